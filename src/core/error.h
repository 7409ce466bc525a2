// The one error type of deltatune. Every failure a user can cause (a bad file, a bad config, a bad
// argument) is thrown as an Error whose message names the place and the problem; callers add
// context ("while loading X: ...") as it travels up.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace deltatune {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

template <class... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(str_cat(args...));
}

// Runs f(); an Error escaping it gets `context` prepended, so the message reads outermost first:
// "loading /m/model.safetensors: tensor 'x': shape [2,3] needs 24 bytes, the file gives 20".
template <class F>
decltype(auto) with_context(const std::string& context, F&& f) {
  try {
    return std::forward<F>(f)();
  } catch (const Error& e) {
    throw Error(context + ": " + e.what());
  }
}

}  // namespace deltatune

#define DT_CHECK(cond, ...)                                   \
  do {                                                        \
    if (!(cond)) ::deltatune::fail(__VA_ARGS__);              \
  } while (0)
