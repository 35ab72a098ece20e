// Search excerpts are cut from a page's HTML before MathJax typesets it, so a formula would
// show as its TeX source. Before Sphinx's search reads a page, every formula is replaced by
// a plain-text reading of it: \frac{a}{b} as a/b, Greek letters and operators as symbols.
(() => {
  const symbols = {
    alpha: "α", beta: "β", gamma: "γ", delta: "δ", epsilon: "ε", varepsilon: "ε", eta: "η",
    theta: "θ", lambda: "λ", mu: "μ", sigma: "σ", tau: "τ", phi: "φ", psi: "ψ", omega: "ω",
    Delta: "Δ", Sigma: "Σ", sum: "Σ", prod: "Π", partial: "∂", nabla: "∇", cdot: "·",
    times: "×", approx: "≈", le: "≤", leq: "≤", ge: "≥", geq: "≥", ne: "≠", neq: "≠",
    to: "→", infty: "∞", sqrt: "√", pm: "±", ldots: "…", dots: "…", in: "∈",
  };
  const plain = (tex) => {
    let text = tex.replace(/^\\[([]|\\[)\]]$/g, "").replace(/\$/g, "");
    for (let i = 0; i < 5; i++) {   // nested fractions, innermost first
      text = text.replace(/\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}/g, "($1)/($2)");
    }
    return text
      .replace(/\\(left|right|big|Big|bigg|Bigg)\b/g, "")
      .replace(/\\(text|mathrm|mathbf|operatorname|hat|bar|tilde)\{([^{}]*)\}/g, "$2")
      .replace(/\\([A-Za-z]+)/g, (whole, name) => symbols[name] ?? name)
      .replace(/\\[,;:! ]/g, " ")
      .replace(/[{}]/g, "")
      .replace(/\(([\w.]+)\)\/\(([\w.]+)\)/g, "$1/$2")   // (a)/(b) -> a/b for single terms
      .replace(/\s+/g, " ")
      .trim();
  };
  const install = () => {
    if (typeof Search === "undefined" || !Search.htmlToText || Search.htmlToText.plainMath) {
      return;
    }
    const original = Search.htmlToText;
    Search.htmlToText = (htmlString, anchor) => {
      const page = new DOMParser().parseFromString(htmlString, "text/html");
      page.querySelectorAll(".math").forEach((el) => el.replaceWith(plain(el.textContent)));
      return original(page.documentElement.outerHTML, anchor);
    };
    Search.htmlToText.plainMath = true;
  };
  install();
  document.addEventListener("DOMContentLoaded", install);
})();
