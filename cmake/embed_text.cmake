# Writes a C++ source that returns the text of a file (the OpenAPI document)
# from a function, so that the binary needs no source tree at run time.
#   cmake -DIN=file -DOUT=file.cpp -DNAMESPACE=ns -DFUNCTION=name -P embed_text.cmake
# The text goes into a raw string literal; a file containing its delimiter
# is refused.
file(READ "${IN}" content)
set(delimiter "sil_embedded")
string(FIND "${content}" ")${delimiter}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw string delimiter )${delimiter}\"")
endif()
set(text "// Generated from ${IN} by cmake/embed_text.cmake. Do not edit.\n")
string(APPEND text "#include <string>\n\nnamespace ${NAMESPACE} {\n\n")
string(APPEND text "const std::string& ${FUNCTION}() {\n")
string(APPEND text "  static const std::string text = R\"${delimiter}(")
string(APPEND text "${content}")
string(APPEND text ")${delimiter}\";\n  return text;\n}\n\n} // namespace ${NAMESPACE}\n")
# Rewrite only on change, so that an unchanged document recompiles nothing.
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
  if(old STREQUAL text)
    return()
  endif()
endif()
file(WRITE "${OUT}" "${text}")
