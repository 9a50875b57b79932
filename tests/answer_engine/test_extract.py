import gzip
import json
from pathlib import Path

import pytest

from answer_engine.extract import ExtractionError, extract_page
from answer_engine.fetch import FetchedPage
from answer_engine.ingest import SHIPPED_CORPUS

EXTRACTION = Path(__file__).resolve().parents[3] / "shared" / "evaldata" / "extraction"


def test_shipped_page_main_text_without_chrome():
    html = (SHIPPED_CORPUS / "Warsaw.html").read_text()
    page = extract_page(
        FetchedPage(url="https://en.wikipedia.org/wiki/Warsaw", content_type="text/html", text=html)
    )
    assert page.method == "trafilatura"
    assert "first female recipient of the Nobel Prize" in page.text
    for chrome in ("Random article", "Privacy policy", "Create account", "Jump to content"):
        assert chrome not in page.text
    assert page.date is None  # the page states no date; none is guessed from the text


def test_bs4_fallback_when_trafilatura_finds_nothing():
    # A page trafilatura rejects (text only inside a <td>) still yields its words through bs4.
    html = (
        "<html><head><title>T</title></head><body><table><tr><td>"
        + "Quokkas live on Rottnest Island near Perth. " * 3
        + "</td></tr></table></body></html>"
    )
    page = extract_page(FetchedPage(url="https://x.example/", content_type="text/html", text=html))
    assert "Quokkas live on Rottnest Island" in page.text


def test_plain_and_markdown():
    md = extract_page(
        FetchedPage(url="file:///a.md", content_type="text/markdown", text="# Title here\n\nBody text.")
    )
    assert md.title == "Title here" and md.method == "plain"
    with pytest.raises(ExtractionError):
        extract_page(FetchedPage(url="file:///e.txt", content_type="text/plain", text="   "))


def test_empty_html_is_an_error():
    with pytest.raises(ExtractionError):
        extract_page(
            FetchedPage(
                url="https://x.example/",
                content_type="text/html",
                text="<html><body><nav>Home</nav></body></html>",
            )
        )


@pytest.mark.skipif(not EXTRACTION.exists(), reason="../shared/evaldata/extraction is not beside the repo")
def test_real_pages_from_the_extraction_benchmark():
    truth = json.loads((EXTRACTION / "ground-truth.json").read_text())
    ids = (EXTRACTION / "ids.txt").read_text().split()[:5]
    for page_id in ids:
        html = gzip.decompress((EXTRACTION / "html" / f"{page_id}.html.gz").read_bytes()).decode(
            "utf-8", "replace"
        )
        page = extract_page(FetchedPage(url=truth[page_id]["url"], content_type="text/html", text=html))
        body_words = set(truth[page_id]["articleBody"].split())
        got_words = set(page.text.split())
        assert len(body_words & got_words) / max(1, len(body_words)) > 0.5, page_id
