// Starts Swagger UI on ARX's API docs page (/schema).
//
// A file of its own, served by ARX, rather than an inline <script>: the
// page's Content-Security-Policy allows scripts from ARX only ('self'), and
// no inline code at all. The page says where the OpenAPI document is in a
// data attribute, so this file never changes with the deployment.
"use strict";

(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    // The base layout: no top bar whose box loads documents from elsewhere.
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    // No badge fetched from the public validator (validator.swagger.io).
    validatorUrl: null,
  });
})();
