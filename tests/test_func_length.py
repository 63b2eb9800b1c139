"""tools/func-length: lists the longest functions and files, fails over the limits.

Driven on small synthetic C files, so it does not depend on the state of the
tree (the tree itself is checked by `make check`).
"""

import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parent.parent / "tools" / "func-length"


def c_function(name, body_lines):
    body = "".join("\tx += %d;\n" % i for i in range(body_lines))
    return "static int %s(int x)\n{\n%s\treturn x;\n}\n\n" % (name, body)


def run_tool(*args):
    return subprocess.run([sys.executable, str(TOOL)] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=60)


def test_detects_long_function(tmp_path):
    src = tmp_path / "long.c"
    # Brace to brace: short_one 10 + 3 lines, long_one 120 + 3 (its "{" is line 19).
    src.write_text("#include <stdio.h>\n\n" + c_function("short_one", 10) +
                   c_function("long_one", 120))
    r = run_tool(src)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "OVER LIMIT: function long_one (%s:19) has 123 lines, limit 100" % src in r.stdout
    assert "short_one" in r.stdout          # listed among the longest
    assert "OVER LIMIT: function short_one" not in r.stdout
    lines = r.stdout.splitlines()
    assert lines[1].split() == ["123", "%s:19" % src, "long_one"]


def test_limits_and_top(tmp_path):
    src = tmp_path / "a.c"
    src.write_text(c_function("f1", 5) + c_function("f2", 50) + c_function("f3", 20))
    r = run_tool("--max-func", "60", src)
    assert r.returncode == 0, r.stdout
    assert "OVER LIMIT" not in r.stdout
    r = run_tool("--max-func", "30", "--top", "1", src)
    assert r.returncode == 1
    assert "OVER LIMIT: function f2" in r.stdout
    assert "f1" not in r.stdout and "f3" not in r.stdout    # --top 1 lists only f2


def test_detects_long_file(tmp_path):
    d = tmp_path / "tree"
    d.mkdir()
    (d / "big.c").write_text("int x;\n" * 1300)
    (d / "small.c").write_text(c_function("g", 3))
    (d / "notes.txt").write_text("{\n" * 2000 + "}\n")     # not a .c file
    r = run_tool(d)
    assert r.returncode == 1
    assert "OVER LIMIT: file %s has 1300 lines, limit 1200" % (d / "big.c") in r.stdout
    assert "notes.txt" not in r.stdout
    assert run_tool("--max-file", "1300", d).returncode == 0


def test_usage_error():
    assert run_tool("--top").returncode == 2
