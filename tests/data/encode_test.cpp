// Text rows into samples (data/encode.cpp): which tokens are trained for each dataset format and
// label setting, on the real Qwen3 tokenizer and its own chat template. The trained tokens are
// decoded back to text and compared with the text a reader of the template expects to be learned.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/encode.h"
#include "text/tokenizer.h"
#include "train/train_config.h"

namespace deltatune {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

// The tokenizer folder scripts/fetch-tokenizer.sh fills (tokenizer.json + tokenizer_config.json
// with Qwen3's chat template and eos_token <|im_end|>).
std::string qwen3_dir() {
  const std::string dir = fs::path(DELTATUNE_QWEN3_TOKENIZER).parent_path().string();
  if (!fs::exists(fs::path(dir) / "tokenizer_config.json"))
    throw std::runtime_error(dir + " is missing: run scripts/fetch-tokenizer.sh (scripts/test.sh does)");
  return dir;
}

const Tokenizer& qwen3() {
  static const Tokenizer t = Tokenizer::load(qwen3_dir());
  return t;
}

TrainConfig config_with(const std::string& chat_template = "tokenizer_default", bool train_on_inputs = false) {
  TrainConfig c;
  c.tokenizer_config = qwen3_dir();
  c.chat_template = chat_template;
  c.train_on_inputs = train_on_inputs;
  return c;
}

DatasetConfig chat_dataset(const std::string& train_on_eos = "turn") {
  DatasetConfig d;
  d.type = "chat_template";
  d.roles_to_train = {"assistant"};
  d.train_on_eos = train_on_eos;
  return d;
}

// The trained tokens, each maximal run of consecutive trained positions decoded on its own.
std::vector<std::string> trained_runs(const Sample& s) {
  EXPECT_EQ(s.input_ids.size(), s.labels.size());
  std::vector<std::string> runs;
  std::vector<int32_t> run;
  for (size_t i = 0; i <= s.labels.size(); ++i) {
    if (i < s.labels.size() && s.labels[i] != kIgnoreLabel) {
      EXPECT_EQ(s.labels[i], s.input_ids[i]) << "a trained label must be the token itself, at " << i;
      run.push_back(s.input_ids[i]);
    } else if (!run.empty()) {
      runs.push_back(qwen3().decode(run));
      run.clear();
    }
  }
  return runs;
}

std::string decode_all(const Sample& s) { return qwen3().decode(s.input_ids); }

const ojson kConversation = ojson::parse(R"({"messages": [
  {"role": "system", "content": "You are Captain Brine."},
  {"role": "user", "content": "How are you?"},
  {"role": "assistant", "content": "Shipshape, matey!"},
  {"role": "user", "content": "And the weather?"},
  {"role": "assistant", "content": "Fair winds ahead, arr."}]})");

Sample encode(const TrainConfig& config, const ojson& row, const DatasetConfig& d) {
  return make_sample_encoder(config)->encode_row(row, d);
}

TEST(EncodeChat, TrainsAssistantTurnsWithTheirEndOfTurn) {
  const Sample s = encode(config_with(), kConversation, chat_dataset("turn"));
  // Qwen3's template: an assistant turn after the last user message opens with an empty think
  // block, earlier ones do not; the newline after <|im_end|> belongs to no turn.
  EXPECT_EQ(decode_all(s),
            "<|im_start|>system\nYou are Captain Brine.<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n"
            "<|im_start|>assistant\nShipshape, matey!<|im_end|>\n<|im_start|>user\nAnd the weather?<|im_end|>\n"
            "<|im_start|>assistant\n<think>\n\n</think>\n\nFair winds ahead, arr.<|im_end|>\n");
  EXPECT_EQ(trained_runs(s),
            (std::vector<std::string>{"Shipshape, matey!<|im_end|>", "<think>\n\n</think>\n\nFair winds ahead, arr.<|im_end|>"}));
}

TEST(EncodeChat, TrainOnEosModes) {
  EXPECT_EQ(trained_runs(encode(config_with(), kConversation, chat_dataset("none"))),
            (std::vector<std::string>{"Shipshape, matey!", "<think>\n\n</think>\n\nFair winds ahead, arr."}));
  EXPECT_EQ(trained_runs(encode(config_with(), kConversation, chat_dataset("last"))),
            (std::vector<std::string>{"Shipshape, matey!", "<think>\n\n</think>\n\nFair winds ahead, arr.<|im_end|>"}));
  // "all": every turn's end marker, the untrained turns' included.
  EXPECT_EQ(trained_runs(encode(config_with(), kConversation, chat_dataset("all"))),
            (std::vector<std::string>{"<|im_end|>", "<|im_end|>", "Shipshape, matey!<|im_end|>", "<|im_end|>",
                                      "<think>\n\n</think>\n\nFair winds ahead, arr.<|im_end|>"}));
}

TEST(EncodeChat, RolesToTrainAndTrainOnInputs) {
  DatasetConfig d = chat_dataset("turn");
  d.roles_to_train = {"user"};
  EXPECT_EQ(trained_runs(encode(config_with(), kConversation, d)),
            (std::vector<std::string>{"How are you?<|im_end|>", "And the weather?<|im_end|>"}));
  const Sample all = encode(config_with("tokenizer_default", true), kConversation, chat_dataset());
  EXPECT_EQ(all.labels, all.input_ids);
}

TEST(EncodeChat, BuiltInChatml) {
  const Sample s = encode(config_with("chatml"), kConversation, chat_dataset("turn"));
  EXPECT_EQ(decode_all(s),
            "<|im_start|>system\nYou are Captain Brine.<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n"
            "<|im_start|>assistant\nShipshape, matey!<|im_end|>\n<|im_start|>user\nAnd the weather?<|im_end|>\n"
            "<|im_start|>assistant\nFair winds ahead, arr.<|im_end|>\n");
  EXPECT_EQ(trained_runs(s), (std::vector<std::string>{"Shipshape, matey!<|im_end|>", "Fair winds ahead, arr.<|im_end|>"}));
}

TEST(EncodeChat, ShareGptWithRoleMappingEqualsOpenAiMessages) {
  const ojson sharegpt = ojson::parse(R"({"conversations": [
    {"from": "system", "value": "You are Captain Brine."},
    {"from": "human", "value": "How are you?"},
    {"from": "gpt", "value": "Shipshape, matey!"},
    {"from": "human", "value": "And the weather?"},
    {"from": "gpt", "value": "Fair winds ahead, arr."}]})");
  DatasetConfig d = chat_dataset();
  d.field_messages = "conversations";
  d.message_property_role = "from";
  d.message_property_content = "value";
  const Sample want = encode(config_with(), kConversation, chat_dataset());
  const Sample got = encode(config_with(), sharegpt, d);
  EXPECT_EQ(got.input_ids, want.input_ids);
  EXPECT_EQ(got.labels, want.labels);

  // Explicit mapping: our role <- the dataset's names.
  ojson custom = sharegpt;
  for (auto& m : custom["conversations"]) m["from"] = m["from"] == "human" ? "person" : m["from"] == "gpt" ? "bot" : m["from"];
  d.roles = {{"user", {"person"}}, {"assistant", {"bot"}}};
  const Sample mapped = encode(config_with(), custom, d);
  EXPECT_EQ(mapped.input_ids, want.input_ids);
  EXPECT_EQ(mapped.labels, want.labels);
}

TEST(EncodeChat, ContentAsTextPartsEqualsString) {
  ojson parts = kConversation;
  parts["messages"][2]["content"] = ojson::parse(R"([{"type": "text", "text": "Shipshape, "}, {"type": "text", "text": "matey!"}])");
  const Sample want = encode(config_with(), kConversation, chat_dataset());
  const Sample got = encode(config_with(), parts, chat_dataset());
  EXPECT_EQ(got.input_ids, want.input_ids);
  EXPECT_EQ(got.labels, want.labels);
}

TEST(EncodeAlpaca, TrainsTheResponseAndEos) {
  DatasetConfig d;
  d.type = "alpaca";
  const ojson row = {{"instruction", "Say hello."}, {"input", "in pirate"}, {"output", "Ahoy!"}};
  const Sample s = encode(config_with(), row, d);
  EXPECT_EQ(decode_all(s),
            "Below is an instruction that describes a task, paired with an input that provides further context. "
            "Write a response that appropriately completes the request.\n\n### Instruction:\nSay hello.\n\n"
            "### Input:\nin pirate\n\n### Response:\nAhoy!<|im_end|>");
  EXPECT_EQ(trained_runs(s), (std::vector<std::string>{"Ahoy!<|im_end|>"}));
  const ojson no_input = {{"instruction", "Say hello."}, {"output", "Ahoy!"}};
  EXPECT_EQ(decode_all(encode(config_with(), no_input, d)).find("### Input"), std::string::npos);
}

TEST(EncodeCompletion, TrainsEverything) {
  DatasetConfig d;
  d.type = "completion";
  d.field = "text";
  const Sample s = encode(config_with(), ojson{{"text", "Arr, the sea be calm."}}, d);
  EXPECT_EQ(trained_runs(s), (std::vector<std::string>{"Arr, the sea be calm.<|im_end|>"}));
  EXPECT_EQ(s.labels, s.input_ids);
}

TEST(EncodeErrors, SayWhatIsWrong) {
  const auto message = [](const ojson& row, const DatasetConfig& d) {
    try {
      encode(config_with(), row, d);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  DatasetConfig alpaca;
  alpaca.type = "alpaca";
  EXPECT_NE(message(ojson{{"instruction", "x"}}, alpaca).find("missing field 'output'"), std::string::npos);
  EXPECT_NE(message(ojson{{"messages", "hello"}}, chat_dataset()).find("'messages' must be a list"), std::string::npos);
  EXPECT_NE(message(ojson::parse(R"({"messages": [{"content": "hi"}]})"), chat_dataset()).find("no string 'role'"),
            std::string::npos);
  EXPECT_NE(message(ojson::parse(R"({"messages": []})"), chat_dataset()).find("no messages"), std::string::npos);
}

}  // namespace
}  // namespace deltatune
