"""Render the SQuAD v1.1 dev Wikipedia articles as realistic HTML pages.

The embedded default corpus is these 48 articles. They are rendered with the
chrome of a real wiki page (header, navigation, search box, footer boilerplate)
so that the pipeline's fetch -> extract path does the same work it does on the
web. The article text itself is unchanged.

Usage: python scripts/render_corpus.py ../shared/evaldata/squad/corpus.jsonl
Output: answer_engine/corpus/wikipedia/*.html and manifest.jsonl (committed).
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "answer_engine" / "corpus" / "wikipedia"

PAGE = """<!DOCTYPE html>
<html class="client-nojs" lang="en" dir="ltr">
<head>
<meta charset="UTF-8">
<title>{title} - Wikipedia</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta property="og:title" content="{title} - Wikipedia">
<meta property="og:type" content="website">
<link rel="canonical" href="{url}">
<link rel="license" href="https://creativecommons.org/licenses/by-sa/4.0/deed.en">
<style>body{{font-family:sans-serif}} #mw-panel{{float:left;width:11em}} #content{{margin-left:12em}}</style>
</head>
<body class="mediawiki ltr skin-vector page-{slug}">
<a class="mw-jump-link" href="#bodyContent">Jump to content</a>
<header class="vector-header mw-header">
  <div class="vector-header-start">
    <a href="https://en.wikipedia.org/wiki/Main_Page" class="mw-logo"><span class="mw-logo-wordmark">Wikipedia</span>
    <span class="mw-logo-tagline">The Free Encyclopedia</span></a>
  </div>
  <div id="p-search" role="search" class="vector-search-box">
    <form action="/w/index.php" id="searchform"><input type="search" name="search" placeholder="Search Wikipedia" aria-label="Search Wikipedia">
    <button type="submit">Search</button></form>
  </div>
  <nav class="vector-user-links" aria-label="Personal tools">
    <ul><li><a href="/w/index.php?title=Special:CreateAccount">Create account</a></li>
    <li><a href="/w/index.php?title=Special:UserLogin">Log in</a></li></ul>
  </nav>
</header>
<div id="mw-panel" class="vector-main-menu">
  <nav id="p-navigation" aria-label="Navigation"><h3>Navigation</h3>
    <ul>
      <li><a href="/wiki/Main_Page">Main page</a></li>
      <li><a href="/wiki/Wikipedia:Contents">Contents</a></li>
      <li><a href="/wiki/Portal:Current_events">Current events</a></li>
      <li><a href="/wiki/Special:Random">Random article</a></li>
      <li><a href="/wiki/Wikipedia:About">About Wikipedia</a></li>
      <li><a href="//en.wikipedia.org/wiki/Wikipedia:Contact_us">Contact us</a></li>
    </ul>
  </nav>
  <nav id="p-interaction" aria-label="Contribute"><h3>Contribute</h3>
    <ul>
      <li><a href="/wiki/Help:Contents">Help</a></li>
      <li><a href="/wiki/Help:Introduction">Learn to edit</a></li>
      <li><a href="/wiki/Wikipedia:Community_portal">Community portal</a></li>
      <li><a href="/wiki/Special:RecentChanges">Recent changes</a></li>
      <li><a href="/wiki/Wikipedia:File_upload_wizard">Upload file</a></li>
    </ul>
  </nav>
  <nav id="p-tb" aria-label="Tools"><h3>Tools</h3>
    <ul>
      <li><a href="/wiki/Special:WhatLinksHere/{slug}">What links here</a></li>
      <li><a href="/wiki/Special:RecentChangesLinked/{slug}">Related changes</a></li>
      <li><a href="/w/index.php?title={slug}&amp;action=info">Page information</a></li>
      <li><a href="/w/index.php?title=Special:CiteThisPage&amp;page={slug}">Cite this page</a></li>
    </ul>
  </nav>
</div>
<main id="content" class="mw-body" role="main">
  <div class="vector-page-toolbar">
    <ul><li class="selected"><a href="/wiki/{slug}">Article</a></li><li><a href="/wiki/Talk:{slug}">Talk</a></li>
    <li><a href="/wiki/{slug}">Read</a></li><li><a href="/w/index.php?title={slug}&amp;action=edit">Edit</a></li>
    <li><a href="/w/index.php?title={slug}&amp;action=history">View history</a></li></ul>
  </div>
  <h1 id="firstHeading" class="firstHeading mw-first-heading"><span class="mw-page-title-main">{title}</span></h1>
  <div id="bodyContent" class="vector-body">
    <div id="siteSub" class="noprint">From Wikipedia, the free encyclopedia</div>
    <div id="mw-content-text" class="mw-body-content">
      <div class="mw-content-ltr mw-parser-output" lang="en" dir="ltr">
{paragraphs}
      </div>
    </div>
    <div id="catlinks" class="catlinks" data-mw="interface"><div id="mw-normal-catlinks" class="mw-normal-catlinks">
      <a href="/wiki/Help:Category">Categories</a>: <ul><li><a href="/wiki/Category:Articles_in_SQuAD_v1.1">Articles in SQuAD v1.1</a></li></ul>
    </div></div>
  </div>
</main>
<footer id="footer" class="mw-footer" role="contentinfo">
  <ul id="footer-info">
    <li id="footer-info-copyright">Text is available under the <a rel="license" href="https://en.wikipedia.org/wiki/Wikipedia:Text_of_the_Creative_Commons_Attribution-ShareAlike_4.0_International_License">Creative Commons Attribution-ShareAlike 4.0 License</a>;
    additional terms may apply. By using this site, you agree to the <a href="https://foundation.wikimedia.org/wiki/Special:MyLanguage/Policy:Terms_of_Use">Terms of Use</a> and
    <a href="https://foundation.wikimedia.org/wiki/Special:MyLanguage/Policy:Privacy_policy">Privacy Policy</a>. Wikipedia&reg; is a registered trademark of the
    <a href="https://wikimediafoundation.org/">Wikimedia Foundation, Inc.</a>, a non-profit organization.</li>
    <li>Article text as captured in the SQuAD v1.1 development set (Rajpurkar et al., 2016).</li>
  </ul>
  <ul id="footer-places">
    <li><a href="https://foundation.wikimedia.org/wiki/Special:MyLanguage/Policy:Privacy_policy">Privacy policy</a></li>
    <li><a href="/wiki/Wikipedia:About">About Wikipedia</a></li>
    <li><a href="/wiki/Wikipedia:General_disclaimer">Disclaimers</a></li>
    <li><a href="//en.wikipedia.org/wiki/Wikipedia:Contact_us">Contact Wikipedia</a></li>
    <li><a href="https://developer.wikimedia.org">Developers</a></li>
    <li><a href="https://stats.wikimedia.org/#/en.wikipedia.org">Statistics</a></li>
    <li><a href="https://foundation.wikimedia.org/wiki/Special:MyLanguage/Policy:Cookie_statement">Cookie statement</a></li>
  </ul>
</footer>
</body>
</html>
"""


def file_name(title: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", title).strip("_")
    return f"{safe}.html"


def render(article: dict) -> str:
    slug = article["title"]
    title = html.escape(slug.replace("_", " "))
    paragraphs = "\n".join(f"        <p>{html.escape(p)}</p>" for p in article["paragraphs"])
    return PAGE.format(
        title=title, url=html.escape(article["url"]), slug=html.escape(slug), paragraphs=paragraphs
    )


def main(src: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = []
    for line in Path(src).read_text(encoding="utf-8").splitlines():
        article = json.loads(line)
        name = file_name(article["title"])
        page = render(article)
        (OUT / name).write_text(page, encoding="utf-8")
        manifest.append(
            {
                "url": article["url"],
                "title": article["title"].replace("_", " "),
                "file": name,
                "content_type": "text/html; charset=utf-8",
                "sha256": hashlib.sha256(page.encode("utf-8")).hexdigest(),
            }
        )
    with (OUT / "manifest.jsonl").open("w", encoding="utf-8") as fh:
        for entry in manifest:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
    print(f"rendered {len(manifest)} pages into {OUT}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/evaldata/squad/corpus.jsonl")
