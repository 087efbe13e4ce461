// The OpenAPI 3.1 description of the HTTP API.
//
// Owns: access to http/openapi.json, which the build embeds into the binary
// (cmake/embed_text.cmake), so that GET /openapi.json needs no source tree
// at run time. The document is the API's reference; tests/openapi_test.py
// checks it against the routes the server answers and the answers it gives.
#pragma once

#include <string>

namespace sil::http_api {

/// The document, exactly as http/openapi.json holds it.
const std::string& openapi_document();

} // namespace sil::http_api
