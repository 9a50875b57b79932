"""The little web: a handful of article pages, redirects, oversized and odd bodies, and a
SearXNG-format /search over the articles. Served on 127.0.0.1 by tests (web search, fetch guard,
faults) and by `answer-engine bench --web` (per-stage timings of a question answered from the web)."""

from __future__ import annotations

from typing import Any

ARTICLES = {
    "tides": (
        "Tides and the Moon",
        "Tides are the rise and fall of sea levels caused by the gravitational pull of the "
        "Moon and the Sun. Most coasts see two high tides and two low tides every lunar day of 24 hours and 50 "  # noqa: E501
        "minutes. Spring tides happen at new and full moon, when the Sun and Moon pull in line.",
    ),
    "volcano": (
        "Mauna Loa",
        "Mauna Loa is one of five volcanoes that form the Island of Hawaii. It is the largest "
        "subaerial volcano in both mass and volume. Its most recent eruption began in November 2022 and "
        "lasted about two weeks.",
    ),
    "glacier": (
        "Glaciers",
        "A glacier is a persistent body of dense ice that is constantly moving under its own "
        "weight. Glaciers form where the accumulation of snow exceeds its ablation over many years. About "
        "ten percent of Earth's land area is covered by glacial ice.",
    ),
    "coral": (
        "Coral reefs",
        "Coral reefs are underwater ecosystems built by colonies of tiny animals called polyps. "
        "The Great Barrier Reef off Australia is the largest reef system in the world, stretching over 2,300 "
        "kilometres. Warming seas cause coral bleaching.",
    ),
    "aurora": (
        "Aurora",
        "An aurora is a natural light display in Earth's sky, seen mostly in high-latitude regions. "
        "Auroras are caused by charged particles from the solar wind striking atoms in the upper atmosphere, "
        "which then glow green or red.",
    ),
}


def article_html(title: str, text: str) -> str:
    paras = "".join(f"<p>{s.strip()}.</p>" for s in text.split(". ") if s.strip())
    return (
        f"<!doctype html><html><head><title>{title}</title><meta name='date' content='2025-06-01'></head><body>"  # noqa: E501
        f"<nav><a href='/'>Home</a> | <a href='/about'>About</a></nav><article><h1>{title}</h1>{paras}</article>"  # noqa: E501
        f"<footer>Copyright the little web</footer></body></html>"
    )


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF with ``text`` in Helvetica, xref offsets computed (pypdf reads it back)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",  # noqa: E501
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def little_web_app() -> Any:
    """Pages, redirects, oversized and odd bodies, and a SearXNG-format /search over the articles.

    ``app.state.search_mode``: "ok", "stall" (never answers), "429" (SearXNG's limiter)."""
    import asyncio as aio

    from starlette.applications import Starlette
    from starlette.responses import (
        JSONResponse,
        PlainTextResponse,
        RedirectResponse,
        Response,
        StreamingResponse,
    )
    from starlette.routing import Route

    async def page(request):
        name = request.path_params["name"]
        if name not in ARTICLES:
            return PlainTextResponse("not found", status_code=404)
        return Response(article_html(*ARTICLES[name]), media_type="text/html; charset=utf-8")

    async def redirect(request):
        n = int(request.path_params["n"])
        return RedirectResponse("/page/tides" if n <= 1 else f"/redirect/{n - 1}", status_code=302)

    async def redirect_to(request):
        return RedirectResponse(request.query_params["url"], status_code=301)

    async def big(request):
        async def chunks():
            for _ in range(200):
                yield b"<p>" + b"x" * 65536 + b"</p>"

        return StreamingResponse(chunks(), media_type="text/html")

    async def big_declared(request):
        return Response(b"tiny", headers={"content-length": "999999999", "content-type": "text/html"})

    async def image(request):
        return Response(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, media_type="image/png")

    async def pdf(request):
        return Response(
            minimal_pdf("Glaciers cover about ten percent of the land."), media_type="application/pdf"
        )

    async def latin1(request):
        body = (
            "<html><body><article><p>Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e: a dessert made with cream, sugar and "  # noqa: E501
            "vanilla, with a caramel top.</p></article></body></html>"
        )
        return Response(body.encode("cp1252"), headers={"content-type": "text/html; charset=windows-1252"})

    async def meta_charset(request):
        body = (
            "<html><head><meta charset='koi8-r'></head><body><article><p>\u041f\u0440\u0438\u0432\u0435\u0442, "  # noqa: E501
            "\u043c\u0438\u0440: this page declares its charset only in a meta tag.</p></article></body></html>"  # noqa: E501
        )
        return Response(
            body.encode("koi8-r"), headers={"content-type": "text/html"}
        )  # no charset in the header

    async def slow(request):  # a page that takes 0.2 s; the app counts how many are served at once
        state = request.app.state
        state.in_flight += 1
        state.most_in_flight = max(state.most_in_flight, state.in_flight)
        try:
            await aio.sleep(0.2)
        finally:
            state.in_flight -= 1
        return await page(request)

    async def stall(request):
        await aio.sleep(3600)
        return PlainTextResponse("late")

    async def search(request):
        mode = request.app.state.search_mode
        request.app.state.search_calls += 1
        if mode == "stall":
            await aio.sleep(3600)
        if mode == "429":
            return PlainTextResponse("Too Many Requests", status_code=429)
        q = set(request.query_params.get("q", "").lower().split())
        base = str(request.base_url).rstrip("/")
        if mode == "dead":  # results whose pages are gone: the engine must fall back to the snippets
            return JSONResponse(
                {
                    "query": "",
                    "number_of_results": 0,
                    "unresponsive_engines": [],
                    "results": [
                        {
                            "url": f"{base}/page/gone-{k}",
                            "title": ARTICLES[k][0],
                            "content": ARTICLES[k][1],
                            "engine": "little-web",
                            "publishedDate": None,
                        }
                        for k in ARTICLES
                    ],
                }
            )
        hits = sorted(ARTICLES, key=lambda k: -len(q & set(ARTICLES[k][1].lower().replace(".", "").split())))
        results = [
            {
                "url": f"{base}/page/{k}",
                "title": ARTICLES[k][0],
                "content": ARTICLES[k][1][:120],
                "engine": "little-web",
                "engines": ["little-web"],
                "positions": [i + 1],
                "score": 1.0 / (i + 1),
                "publishedDate": "2025-06-01T00:00:00",
                "category": "general",
                "template": "default.html",
                "parsed_url": ["http", base, f"/page/{k}", "", "", ""],
            }
            for i, k in enumerate(hits)
        ]
        return JSONResponse(
            {
                "query": request.query_params.get("q", ""),
                "number_of_results": 0,
                "results": results,
                "answers": [],
                "corrections": [],
                "infoboxes": [],
                "suggestions": [],
                "unresponsive_engines": [],
            }
        )

    app = Starlette(
        routes=[
            Route("/page/{name}", page),
            Route("/redirect/{n}", redirect),
            Route("/redirect-to", redirect_to),
            Route("/big", big),
            Route("/big-declared", big_declared),
            Route("/image", image),
            Route("/pdf", pdf),
            Route("/latin1", latin1),
            Route("/meta-charset", meta_charset),
            Route("/stall", stall),
            Route("/slow/{name}", slow),
            Route("/search", search),
        ]
    )
    app.state.search_mode = "ok"
    app.state.search_calls = 0
    app.state.in_flight = app.state.most_in_flight = 0
    return app
