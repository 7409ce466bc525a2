// libFuzzer target: any text as a Jinja template must parse or throw Error, and what parses must
// render a fixed conversation (tools, tool calls, reasoning) or throw Error: never crash, trip
// ASan/UBSan, leak (reference cycles through namespaces and macros), overflow the stack or run
// without end. The render limits are small so that each input stays fast; the defaults bound
// time and memory the same way, only higher. Run by scripts/fuzz.sh chat_template.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "text/jinja/json_value.h"
#include "text/jinja/template.h"

namespace {

const deltatune::jinja::Value& conversation() {
  static const deltatune::jinja::Value v = deltatune::jinja::value_from_json(nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "You are helpful."},
      {"role": "user", "content": [{"type": "text", "text": "Weather in Zürich?"}, {"type": "image"}]},
      {"role": "assistant", "content": "<think>\nlook it up\n</think>\n\n", "reasoning_content": "look it up",
       "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Zürich", "days": [1, 2.5, null, true]}}},
                      {"name": "search", "arguments": "{\"q\": \"x\"}"}]},
      {"role": "tool", "content": "12 C"},
      {"role": "tool", "content": "rain"},
      {"role": "user", "content": ""}
    ],
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters":
              {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
    "documents": null, "add_generation_prompt": true, "enable_thinking": false,
    "bos_token": "<s>", "eos_token": "<|im_end|>"
  })"));
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view source(reinterpret_cast<const char*>(data), size);
  deltatune::jinja::RenderLimits limits;
  limits.max_steps = 20000;
  limits.max_string_bytes = 1 << 20;
  try {
    const deltatune::jinja::Template t(source, "fuzz");
    t.render(conversation(), limits);
  } catch (const deltatune::Error&) {
  }
  return 0;
}
