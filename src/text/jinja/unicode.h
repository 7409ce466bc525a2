// Python's view of text, for the Jinja interpreter: strings are UTF-8 bytes here but code points in
// Python, so lengths, indexes and slices count code points, and upper()/lower()/title(), strip()
// and repr() follow Python's Unicode tables (unicode_tables.inc, generated from Python 3.11).
//
// Bytes that are not valid UTF-8 decode one by one to U+DC80..U+DCFF and encode back to the same
// byte (Python's "surrogateescape"), so any input round-trips unchanged.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace deltatune::jinja {

// Decodes the code point at s[i] and advances i past it.
char32_t next_code_point(std::string_view s, size_t& i);
void append_utf8(std::string& out, char32_t c);
std::u32string to_code_points(std::string_view s);
std::string to_utf8(std::u32string_view s);
size_t code_point_count(std::string_view s);
bool is_ascii(std::string_view s);

bool is_space(char32_t c);      // str.isspace()
bool is_printable(char32_t c);  // str.isprintable()
bool is_cased(char32_t c);
bool is_case_ignorable(char32_t c);
bool is_ascii_digit(char32_t c);

// Python's str methods of the same names.
std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_title(std::string_view s);
std::string py_capitalize(std::string_view s);

}  // namespace deltatune::jinja
