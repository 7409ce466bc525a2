"""The reference renderer for deltatune's chat templates: Python's jinja2, configured the way
transformers renders chat templates (transformers/utils/chat_template_utils.py,
_cached_compile_jinja_template and render_jinja_template):

  ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                extensions=[<generation tag>, jinja2.ext.loopcontrols])
  filters["tojson"]          json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
  globals["raise_exception"] raises jinja2.exceptions.TemplateError(message)
  globals["strftime_now"]    datetime.now().strftime(format)
  render(messages=..., tools=None, documents=None, add_generation_prompt=False, **the line's keys)

Usage:
  render_with_jinja2.py conversations TEMPLATE.jinja IN.jsonl   each line: messages, tools, ... as above
  render_with_jinja2.py constructs IN.jsonl                      each line: {"template": ..., "variables": {...}}
Writes one JSON line per input line to stdout: {"output": text} or {"error": "Type: message"}.
"""
import json
import sys
from datetime import datetime

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment


class GenerationTag(jinja2.ext.Extension):
    """transformers' {% generation %}...{% endgeneration %}: marks assistant text, renders it as is."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def strftime_now(format):
    return datetime.now().strftime(format)


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                       extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env, source, variables):
    try:
        return {"output": env.from_string(source).render(**variables)}
    except Exception as e:  # the C++ side only needs to know that jinja2 failed too
        return {"error": f"{type(e).__name__}: {e}"}


def conversation_variables(line):
    variables = dict(line)
    variables.setdefault("tools", None)
    variables.setdefault("documents", None)
    variables.setdefault("add_generation_prompt", False)
    return variables


def main():
    env = environment()
    mode = sys.argv[1]
    if mode == "conversations":
        with open(sys.argv[2], encoding="utf-8", newline="") as f:
            source = f.read()
        lines = open(sys.argv[3], encoding="utf-8").read().splitlines()
        jobs = [(source, conversation_variables(json.loads(l))) for l in lines if l.strip()]
    elif mode == "constructs":
        lines = open(sys.argv[2], encoding="utf-8").read().splitlines()
        jobs = [(c["template"], c.get("variables", {})) for c in map(json.loads, filter(str.strip, lines))]
    else:
        sys.exit(f"unknown mode {mode!r}")
    for source, variables in jobs:
        sys.stdout.write(json.dumps(render(env, source, variables), ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
