#!/usr/bin/env python3
"""Check every link of the built book (target/book by default): each relative href or src
must name a file the book contains and, with a #fragment, an id on that page. External links
(http:, https:, mailto:) are not followed. Prints each dead link with the page it is on, and
exits 1 if there is any.

Usage: tools/book-links.py [BOOK_DIR] [--max N]
"""
import html.parser
import os
import sys
import urllib.parse
from collections import defaultdict

SKIP = ("http:", "https:", "mailto:", "javascript:", "data:")


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id", "name"):
            if a.get(key):
                self.ids.add(a[key])
        for key in ("href", "src"):
            v = a.get(key)
            if v and not v.startswith(SKIP):
                self.links.append((tag, v))


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    most = 40
    if "--max" in sys.argv:
        most = int(sys.argv[sys.argv.index("--max") + 1])
        args = [a for a in args if a != str(most)]
    root = os.path.abspath(args[0] if args else "target/book")
    if not os.path.isdir(root):
        print(f"book-links: no book at {root} (run `just book` first)", file=sys.stderr)
        return 2
    pages = {}
    for d, _, files in os.walk(root):
        for f in files:
            if f.endswith(".html"):
                path = os.path.join(d, f)
                p = Page()
                with open(path, encoding="utf-8") as fh:
                    p.feed(fh.read())
                pages[path] = p
    dead = defaultdict(list)
    checked = 0
    for path, page in sorted(pages.items()):
        for tag, link in page.links:
            checked += 1
            url = urllib.parse.urlsplit(link)
            # A path from the site's root (mdBook's 404 page links "/") is the book's root.
            base = root if url.path.startswith("/") else os.path.dirname(path)
            target = path if not url.path else os.path.normpath(
                os.path.join(base, urllib.parse.unquote(url.path).lstrip("/")))
            if os.path.isdir(target):
                target = os.path.join(target, "index.html")
            rel = os.path.relpath(path, root)
            if not os.path.exists(target):
                dead[rel].append(f"{link} (no such file in the book)")
            elif url.fragment and target.endswith(".html"):
                ids = pages[target].ids if target in pages else set()
                if urllib.parse.unquote(url.fragment) not in ids:
                    dead[rel].append(f"{link} (no such anchor)")
    total = sum(len(v) for v in dead.values())
    shown = 0
    for rel, links in sorted(dead.items()):
        for link in links:
            if shown < most:
                print(f"{rel}: {link}")
            shown += 1
    if total > most:
        print(f"... and {total - most} more")
    print(f"book-links: {checked} links on {len(pages)} pages, {total} dead")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
