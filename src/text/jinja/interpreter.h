// Runs a parsed template: statements write to an output string, expressions compute Values.
//
// Scopes follow jinja2: a for-loop iteration, a macro call, and the bodies of {% with %},
// {% filter %}, {% set %}...{% endset %} and call blocks each get a new scope whose parent is the
// enclosing one, so their assignments do not leak out; {% if %} shares its enclosing scope.
// Namespaces are the way to carry a value out of a loop. Macros see their defining scope as it is
// when they are called.
//
// One RenderState serves one render; the parsed template is shared and never written, so many
// threads may render one template at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "text/jinja/ast.h"
#include "text/jinja/lexer.h"
#include "text/jinja/value.h"

namespace deltatune::jinja {

// Bounds on one render, so that no template (a fuzzer's included) can exhaust memory, time or the
// stack. jinja2 has none of these but Python's recursion limit; chat templates stay far below.
struct RenderLimits {
  size_t max_string_bytes = size_t(1) << 30;  // the output and any one string or list
  uint64_t max_steps = 0;                      // statements, loop iterations and calls; 0: no limit
  int max_nesting = 2000;                      // nested evaluation, macro calls included
};

struct Frame {
  explicit Frame(std::shared_ptr<Frame> p = nullptr) : parent(std::move(p)) {}
  const Value* find(std::string_view name) const;
  void set(std::string_view name, Value value);
  std::shared_ptr<Frame> parent;
  std::vector<std::pair<std::string, Value>> vars;
};
using FramePtr = std::shared_ptr<Frame>;

class RenderState {
 public:
  RenderState(const SourceLines& lines, const RenderLimits& limits) : lines_(lines), limits_(limits) {}
  ~RenderState();
  RenderState(const RenderState&) = delete;
  RenderState& operator=(const RenderState&) = delete;

  // Renders a template body with `variables` as its outermost scope.
  std::string render(const ast::Body& body, FramePtr variables);

  // For built-in filters and functions.
  Value call(const Value& callee, const Arguments& args);
  void check_size(size_t bytes) const;
  // str(v) and repr(v) within the render's size limit.
  std::string str(const Value& v) const;
  std::string repr(const Value& v) const;
  // Counts work done outside statements (a filter over n items costs n), against max_steps.
  void charge(size_t work);
  std::shared_ptr<Namespace> new_namespace();
  const RenderLimits& limits() const { return limits_; }

  // For macro and loop objects.
  Value call_macro(const ast::MacroDef& def, const FramePtr& scope, const Arguments& args);
  Value call_loop(const ast::For& loop, const FramePtr& scope, const Value& iterable, int depth0);

 private:
  enum class Flow { Normal, Break, Continue };
  struct Nested;

  Flow exec(const ast::Body& body, const FramePtr& frame, std::string& out);
  Flow exec_stmt(const ast::Stmt& s, const FramePtr& frame, std::string& out);
  Flow exec_for(const ast::For& s, const FramePtr& frame, std::string& out, const Value& iterable, int depth0);
  void exec_call_block(const ast::CallBlock& s, const FramePtr& frame, std::string& out);
  std::string render_scoped(const ast::Body& body, const FramePtr& frame);
  void assign(const ast::Target& t, const Value& v, const FramePtr& frame);
  void append(std::string& out, std::string_view text) const;
  void step();

  Value eval(const ast::Expr& e, const FramePtr& frame);
  Value eval_inner(const ast::Expr& e, const FramePtr& frame);
  Value eval_call(const ast::Call& c, const FramePtr& frame, const Value* caller);
  Value eval_filter(const ast::Filter& f, const FramePtr& frame, const Value* block_input);
  Arguments eval_args(const ast::CallArgs& a, const FramePtr& frame);
  Value lookup(const std::string& name, const FramePtr& frame) const;
  FramePtr capture(const FramePtr& frame);
  [[noreturn]] void fail_at(uint32_t offset, const std::string& what) const;

  const SourceLines& lines_;
  RenderLimits limits_;
  uint64_t steps_ = 0;
  int nesting_ = 0;
  // Namespaces and the scopes macros close over can form reference cycles (a namespace holding
  // itself, a scope holding a macro that holds the scope); they are kept here and emptied when
  // the render ends, which frees everything and keeps destruction shallow.
  std::vector<std::shared_ptr<Namespace>> namespaces_;
  std::vector<FramePtr> captured_;
};

}  // namespace deltatune::jinja
