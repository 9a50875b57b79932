"""engine_build: the operator's CLI for TensorRT-LLM engines and quantized checkpoints (later issue)."""
