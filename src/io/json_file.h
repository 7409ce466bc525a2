// Small files written whole: JSON and text, read with errors that name the file, written
// atomically (a temporary file beside the target, flushed and renamed over it), so a crash or a
// full disk never leaves a half-written file.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace deltatune {

nlohmann::json read_json_file(const std::string& path);
void write_text_file_atomic(const std::string& path, const std::string& content);
inline void write_json_file_atomic(const std::string& path, const nlohmann::json& j) {
  write_text_file_atomic(path, j.dump(2) + "\n");
}

}  // namespace deltatune
