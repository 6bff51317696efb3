// Render the sequence diagrams of the fixture pages (<pre class="mermaid">) once the page has
// loaded, in the book's light or dark theme, at their own size (not shrunk to the text column:
// book.css lets a wide one scroll sideways).
(function () {
    const dark = ["coal", "navy", "ayu"].some((t) => document.documentElement.classList.contains(t));
    mermaid.initialize({ startOnLoad: true, theme: dark ? "dark" : "default", sequence: { mirrorActors: false, useMaxWidth: false } });
})();
