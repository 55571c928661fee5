// Typeset the math that pymdownx.arithmatex (generic mode) leaves as \( ... \) and \[ ... \] inside
// elements of class "arithmatex", with the KaTeX files shipped beside this script: no network.
// document$ is Material for MkDocs' stream of page loads.
document$.subscribe(function (page) {
  renderMathInElement(page.body, {
    delimiters: [
      { left: "\\(", right: "\\)", display: false },
      { left: "\\[", right: "\\]", display: true },
    ],
  });
});
