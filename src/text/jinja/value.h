// The values a Jinja template computes with, modelled on the Python objects jinja2 hands around:
// Undefined, None, bool, int, float, str (and Markup, a str marked safe), list, tuple, the lazy
// sequences filters return (generators, ranges, dict views), dict, and objects (namespaces, macros,
// functions, bound methods, the loop variable).
//
// Lists and dicts are immutable once built, as in transformers' ImmutableSandboxedEnvironment, so
// they are shared, not copied. Namespaces are the one mutable container.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "core/error.h"

namespace deltatune::jinja {

class Value;
class Object;
class RenderState;
struct ListData;
struct DictData;
using ListPtr = std::shared_ptr<const ListData>;
using DictPtr = std::shared_ptr<const DictData>;
using ObjectPtr = std::shared_ptr<Object>;

// What kind of Python sequence a ListData stands for: they print, compare, index and measure
// differently (a generator has no len() and is always true; a range prints as "range(0, 3)").
enum class SeqKind : uint8_t { List, Tuple, Generator, Range, DictKeys, DictValues, DictItems };

class Value {
 public:
  enum class Type : uint8_t { Undefined, None, Bool, Int, Float, String, Sequence, Dict, Object };

  Value() : data_(UndefinedData{}) {}
  // An undefined value carries why it is undefined, for the error raised when it is misused.
  static Value undefined(std::string reason = {});
  static Value none() { return Value(Data(NoneData{})); }
  static Value boolean(bool b) { return Value(Data(b)); }
  static Value integer(int64_t i) { return Value(Data(i)); }
  static Value number(double d) { return Value(Data(d)); }
  static Value string(std::string s, bool markup = false);
  static Value sequence(std::vector<Value> items, SeqKind kind = SeqKind::List);
  static Value tuple(std::vector<Value> items) { return sequence(std::move(items), SeqKind::Tuple); }
  static Value range(int64_t start, int64_t stop, int64_t step, std::vector<Value> items);
  // A generator that raises `error` once its items are used up (a Python generator fails only
  // when iterated that far).
  static Value failed_generator(std::string error);
  static Value dict(DictData d);
  static Value object(ObjectPtr o) { return Value(Data(std::move(o))); }

  Type type() const { return Type(data_.index()); }
  bool is_undefined() const { return type() == Type::Undefined; }
  bool is_none() const { return type() == Type::None; }
  bool is_bool() const { return type() == Type::Bool; }
  bool is_int() const { return type() == Type::Int; }  // not bool, unlike Python's isinstance
  bool is_float() const { return type() == Type::Float; }
  bool is_number() const { return is_bool() || is_int() || is_float(); }
  bool is_string() const { return type() == Type::String; }
  bool is_markup() const { return is_string() && std::get<StringData>(data_).markup; }
  bool is_sequence() const { return type() == Type::Sequence; }
  bool is_list_like() const;  // list or tuple: indexable, measurable, JSON arrays
  bool is_dict() const { return type() == Type::Dict; }
  bool is_object() const { return type() == Type::Object; }

  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const { return is_bool() ? int64_t(as_bool()) : std::get<int64_t>(data_); }
  double as_float() const { return is_float() ? std::get<double>(data_) : double(as_int()); }
  const std::string& str() const { return *std::get<StringData>(data_).text; }
  const ListData& seq() const { return *std::get<ListPtr>(data_); }
  const ListPtr& seq_ptr() const { return std::get<ListPtr>(data_); }
  const DictData& dict() const { return *std::get<DictPtr>(data_); }
  Object& object() const { return *std::get<ObjectPtr>(data_); }
  const ObjectPtr& object_ptr() const { return std::get<ObjectPtr>(data_); }
  const std::string& undefined_reason() const;

  // How deeply lists and dicts nest inside this value (objects count as 0), and how many values it
  // holds counting nested ones (shared lists count each time). Both are bounded when a container
  // is built, so printing, comparing and freeing values never recurse or run without limit.
  uint32_t depth() const;
  uint64_t weight() const;

 private:
  struct UndefinedData {
    std::shared_ptr<const std::string> reason;
  };
  struct NoneData {};
  struct StringData {
    std::shared_ptr<const std::string> text;
    bool markup = false;
  };
  using Data = std::variant<UndefinedData, NoneData, bool, int64_t, double, StringData, ListPtr, DictPtr,
                            ObjectPtr>;
  explicit Value(Data d) : data_(std::move(d)) {}
  Data data_;
};

constexpr uint32_t kMaxValueDepth = 500;
constexpr uint64_t kMaxValueWeight = uint64_t(1) << 24;

struct ListData {
  std::vector<Value> items;
  SeqKind kind = SeqKind::List;
  uint32_t depth = 1;
  uint64_t weight = 1;
  int64_t range_start = 0, range_stop = 0, range_step = 1;  // SeqKind::Range, for its repr
  // A generator is used up as it is iterated: the items before `consumed` are gone.
  mutable size_t consumed = 0;
  std::shared_ptr<const std::string> error;  // raised by a generator after its items
};

// A dict in insertion order, as Python's. Keys are any hashable value; string and integer keys
// are also indexed by hash (1, 1.0 and True are one key, as in Python).
struct DictData {
  std::vector<std::pair<Value, Value>> items;
  std::unordered_map<std::string, size_t> string_index;
  std::unordered_map<int64_t, size_t> int_index;  // ints, and bools and floats equal to one
  uint32_t depth = 1;
  uint64_t weight = 1;

  // Inserts, or replaces the value of an equal key in place (Python keeps the first position).
  void set(Value key, Value value);
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
};

struct Argument {
  std::string name;  // empty for a positional argument
  Value value;
};
using Arguments = std::vector<Argument>;

// Anything else a template can touch: namespaces, macros, functions, methods, the loop object.
class Object {
 public:
  virtual ~Object() = default;
  virtual std::string type_name() const = 0;  // Python's type name, for messages
  virtual Value attribute(std::string_view name) const;  // undefined unless overridden
  virtual bool callable() const { return false; }
  virtual Value call(const Arguments& args, RenderState& state) const;
  // obj.name(args) for the object's methods; false when it has no method of that name.
  virtual bool call_method(std::string_view name, const Arguments& args, RenderState& state, Value& result) const {
    return false;
  }
  virtual std::string repr() const;
};

// namespace(...): the one mutable object, written by {% set ns.attr = value %}.
class Namespace : public Object {
 public:
  std::string type_name() const override { return "Namespace"; }
  Value attribute(std::string_view name) const override;
  std::string repr() const override;  // needs the printer; defined with it
  void set(const std::string& name, Value value);
  std::vector<std::pair<std::string, Value>> attrs;
};

// Python truthiness.
bool truthy(const Value& v);
// Python's type name: 'str', 'int', 'NoneType', 'list', 'dict', ...
std::string type_name(const Value& v);
// Python ==, for values of any type (1 == 1.0 == True; [1] != (1,)).
bool equals(const Value& a, const Value& b);

}  // namespace deltatune::jinja
