"""Random Jinja templates over a fixed set of variables, for comparing deltatune's interpreter with
jinja2 beyond the hand-written constructs: expressions mixing filters, tests, methods and
operators, inside if/for/set/macro/filter statements with whitespace control. Most fail in both
(a filter meets a value of the wrong type); the rest must render identically.

  random_templates.py SEED COUNT > templates.jsonl    (one {"template", "variables"} per line)
"""
import json
import random
import sys

R = random.Random(int(sys.argv[1]))
N = int(sys.argv[2])
VARS = ["messages", "tools", "add_generation_prompt", "enable_thinking", "s", "n", "f", "l", "d", "u", "e", "b", "nested"]
ATTRS = ["role", "content", "tool_calls", "reasoning_content", "name", "function", "arguments", "a", "b", "items", "missing"]
FILTERS0 = ["length", "trim", "string", "upper", "lower", "capitalize", "title", "first", "last", "list", "tojson", "items",
            "int", "float", "abs", "round", "reverse", "sort", "unique", "sum", "min", "max", "safe", "escape", "dictsort", "count", "e"]
FILTERS1 = [("join", ["', '", "'-'", "''"]), ("default", ["'dflt'", "none", "0"]), ("replace", ["'a', 'b'", "'e', 'E', 1", "'', '.'"]),
            ("map", ["attribute='role'", "'string'", "'upper'", "'length'"]), ("select", ["'string'", "'odd'", "'defined'", "'none'"]),
            ("reject", ["'string'", "'none'"]), ("selectattr", ["'role', 'equalto', 'user'", "'content'", "'role', 'in', ['user', 'tool']"]),
            ("rejectattr", ["'role', 'equalto', 'user'"]), ("batch", ["2", "3, 'x'"]), ("slice", ["2"]), ("truncate", ["5", "9, true"]),
            ("indent", ["2", "2, true", "'> '"]), ("center", ["9"]), ("tojson", ["indent=2", "sort_keys=true", "separators=(',', ':')"]),
            ("round", ["1", "2, 'floor'"]), ("trim", ["'x'", "'\\n '"]), ("format", ["1, 2", "'a'"]), ("int", ["7", "base=16"]),
            ("sort", ["reverse=true", "attribute='role'"]), ("dictsort", ["by='value'", "reverse=true"]), ("d", ["'x', true"])]
TESTS = ["defined", "undefined", "none", "string", "number", "integer", "float", "mapping", "sequence", "iterable", "callable",
         "boolean", "true", "false", "odd", "even", "lower", "upper"]
TESTS1 = [("divisibleby", "3"), ("eq", "1"), ("in", "['user', 'a']"), ("sameas", "none"), ("gt", "2"), ("equalto", "'user'")]
METHODS = [("strip", ["", "'x'"]), ("split", ["", "','", "' ', 1"]), ("rsplit", ["','", "none, 1"]), ("startswith", ["'a'", "('x', 'h')"]),
           ("endswith", ["'o'"]), ("replace", ["'l', 'L'"]), ("upper", [""]), ("lower", [""]), ("title", [""]), ("lstrip", ["", "'\\n'"]),
           ("rstrip", [""]), ("find", ["'l'"]), ("count", ["'l'"]), ("format", ["1", ""]), ("get", ["'role'", "'missing', 'dflt'"]),
           ("items", [""]), ("keys", [""]), ("values", [""]), ("splitlines", [""]), ("zfill", ["5"]), ("center", ["7", "7, '*'"])]
LITS = ["'hello'", "'a,b,c'", "\"x'y\"", "'é😀'", "''", "0", "1", "-3", "2.5", "1e-5", "true", "false", "none", "[1, 2, 3]", "[]",
        "('a', 1)", "{'k': 'v', 'n': 2}", "{}", "'  pad  '", "'<b>'", "'line1\\nline2'", "range(4)", "namespace(x=1)"]

def atom(depth):
    r = R.random()
    if r < 0.35: return R.choice(LITS)
    if r < 0.75:
        v = R.choice(VARS)
        if R.random() < 0.4: v += "." + R.choice(ATTRS)
        if R.random() < 0.3: v += "[" + R.choice(["0", "-1", "1", "'role'", "1:", "::-1", ":2"]) + "]"
        return v
    return "(" + expr(depth + 1) + ")"

def postfix(e, depth):
    r = R.random()
    if r < 0.25:
        f = R.choice(FILTERS0); return f"{e}|{f}"
    if r < 0.45:
        f, args = R.choice(FILTERS1); return f"{e}|{f}({R.choice(args)})"
    if r < 0.55:
        t = R.choice(TESTS); return f"{e} is {'not ' if R.random() < 0.3 else ''}{t}"
    if r < 0.6:
        t, a = R.choice(TESTS1); return f"{e} is {t} {a}" if R.random() < 0.5 else f"{e} is {t}({a})"
    if r < 0.75:
        m, args = R.choice(METHODS); return f"{e}.{m}({R.choice(args)})"
    return e

def expr(depth=0):
    if depth > 3: return atom(depth)
    e = postfix(atom(depth), depth)
    r = R.random()
    if r < 0.12: e = f"{e} {R.choice(['+', '-', '*', '//', '%', '~', '~', '/'])} {postfix(atom(depth), depth)}"
    elif r < 0.22: e = f"{e} {R.choice(['==', '!=', '<', '>=', 'in', 'not in'])} {postfix(atom(depth), depth)}"
    elif r < 0.3: e = f"{e} {R.choice(['and', 'or'])} {expr(depth + 1)}"
    elif r < 0.35: e = f"not {e}"
    elif r < 0.42: e = f"{e} if {expr(depth + 1)} else {expr(depth + 1)}"
    return e

def stmt(depth):
    r = R.random()
    ws = R.choice(["", "-"]); we = R.choice(["", "-"])
    nl = R.choice(["", "\n", "\n  ", "  "])
    if depth > 2 or r < 0.35: return f"{nl}{{{{{ws} {expr()} {we}}}}}"
    if r < 0.5:
        body = "".join(stmt(depth + 1) for _ in range(R.randint(1, 3)))
        els = "".join(stmt(depth + 1) for _ in range(R.randint(0, 2)))
        return f"{nl}{{%{ws} if {expr()} {we}%}}{body}" + (f"{{% elif {expr()} %}}{stmt(depth+1)}" if R.random() < 0.3 else "") + (f"{{% else %}}{els}" if els else "") + "{% endif %}"
    if r < 0.68:
        it = R.choice(["messages", "tools", "l", "s", "d", "d.items()", "range(3)", "messages|selectattr('role', 'equalto', 'user')", "u", "nested", "messages[::-1]"])
        tgt = "k, v" if "items()" in it else "x"
        body = "".join(stmt(depth + 1) for _ in range(R.randint(1, 3)))
        extra = R.choice(["{{ loop.index }}", "{{ loop.first }}{{ loop.last }}", "{{ loop.revindex0 }}", "{% if loop.last %}!{% endif %}", "{{ loop.previtem is defined }}", "", "{% if loop.index > 1 %}{% break %}{% endif %}", "{% continue %}"])
        cond = f" if {expr()}" if R.random() < 0.15 else ""
        return f"{nl}{{%{ws} for {tgt} in {it}{cond} {we}%}}{extra}{body}{{% else %}}E{{% endfor %}}"
    if r < 0.8:
        return f"{nl}{{% set {R.choice(['a', 'ns.x', 'b'])} = {expr()} %}}{{{{ {R.choice(['a', 'ns.x', 'b'])} }}}}"
    if r < 0.88:
        return f"{nl}{{% macro m{depth}(p, q='Q') %}}[{{{{ p }}}}{{{{ q }}}}]{{% endmacro %}}{{{{ m{depth}({expr()}) }}}}"
    return f"{nl}{{% filter {R.choice(['upper', 'trim', 'title', 'indent(2)'])} %}}{stmt(depth + 1)}{{% endfilter %}}"

VARIABLES = {"messages": [{"role": "system", "content": "Sys"}, {"role": "user", "content": "hello"},
                          {"role": "assistant", "content": "<think>r</think>ok", "reasoning_content": "r", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1, "b": [2, "x"]}}}]},
                          {"role": "tool", "content": "res"}, {"role": "user", "content": [{"type": "text", "text": "t"}]}],
             "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
             "add_generation_prompt": True, "enable_thinking": False, "s": "hello world", "n": 7, "f": 0.1, "l": [3, 1, 2],
             "d": {"b": 2, "a": 1, "items": "I"}, "e": "", "b": True, "nested": [[1, "a"], [2, "b"]]}
for _ in range(N):
    t = "{% set ns = namespace(x=0) %}" + "".join(stmt(0) for _ in range(R.randint(1, 4)))
    sys.stdout.write(json.dumps({"template": t, "variables": VARIABLES}, ensure_ascii=False) + "\n")
