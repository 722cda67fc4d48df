// The receipt page's Print button. A file rather than an onclick attribute: the CSP allows scripts from 'self' only.
document.getElementById("print-receipt").addEventListener("click", () => window.print());
