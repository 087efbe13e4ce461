#include "http/framing.hpp"

#include <optional>
#include <string>

namespace sil::http_api {

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t';
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i]))
      return false;
  return true;
}

/// RFC 9110 section 5.6.2: a token character.
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
    return true;
  return std::string_view{"!#$%&'*+-.^_`|~"}.find(c) != std::string_view::npos;
}

/// Splits a field value on commas into trimmed elements, dropping empty ones
/// (RFC 9110 section 5.6.1). Returns the first element that is not a bare
/// token, if any: a coding with parameters (";q=1"), a quoted or spaced
/// word, or a parameter with no coding before it.
std::optional<std::string_view> codings_of(std::string_view value,
                                           std::vector<std::string_view>& out) {
  while (!value.empty()) {
    auto comma = value.find(',');
    auto item = value.substr(0, comma);
    value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
    while (!item.empty() && is_space(item.front()))
      item.remove_prefix(1);
    while (!item.empty() && is_space(item.back()))
      item.remove_suffix(1);
    if (item.empty())
      continue;
    for (char c : item)
      if (!is_tchar(c))
        return item;
    out.push_back(item);
  }
  return std::nullopt;
}

} // namespace

status check_framing(const framing_fields& f) {
  if (f.transfer_encodings.empty())
    return ok();
  if (f.version < 11)
    return {errc::bad_request, "Transfer-Encoding is not allowed in an HTTP/1.0 request"};
  if (f.content_lengths > 0)
    return {errc::bad_request, "a request must not carry both Transfer-Encoding and "
                               "Content-Length"};
  std::vector<std::string_view> codings;
  for (auto v : f.transfer_encodings) {
    // Beast's parser stops reading the list at such an element, so the two
    // would disagree on whether the body is chunked (";chunked, chunked"
    // read as chunked here, as no coding at all there): a smuggling gap.
    // No client needs anything but a bare "chunked".
    if (auto bad = codings_of(v, codings))
      return {errc::bad_request, "Transfer-Encoding element '" + std::string{*bad}
                                   + "' is not a bare transfer coding (parameters and other "
                                     "characters are not accepted)"};
  }
  if (codings.empty())
    return {errc::bad_request, "Transfer-Encoding is empty"};
  if (!iequals(codings.back(), "chunked"))
    return {errc::bad_request, "the final transfer coding must be chunked, not '"
                                 + std::string{codings.back()}
                                 + "': the body length would be unknown"};
  for (std::size_t i = 0; i + 1 < codings.size(); ++i) {
    if (iequals(codings[i], "chunked"))
      return {errc::bad_request, "chunked must be applied only once"};
    return {errc::bad_request,
            "transfer coding '" + std::string{codings[i]} + "' is not supported (only chunked)"};
  }
  return ok();
}

} // namespace sil::http_api
