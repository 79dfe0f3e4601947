// Renders the math that pymdownx.arithmatex (generic mode) leaves in the page: \( ... \) inline and
// \[ ... \] display, inside elements of class "arithmatex". KaTeX is vendored in docs/assets/katex/
// (scripts/vendor_katex.py), so pages render formulas without a network.
document$.subscribe(({ body }) => {
  for (const element of body.querySelectorAll(".arithmatex")) {
    renderMathInElement(element, {
      delimiters: [
        { left: "\\(", right: "\\)", display: false },
        { left: "\\[", right: "\\]", display: true },
      ],
      throwOnError: false,
    });
  }
});
