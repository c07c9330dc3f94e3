"""Session-state keys are named once, in app_pages/shared/state.py, and spelt one way: no page reads or writes
st.session_state with a key written out in place (a literal or an f-string)."""

from __future__ import annotations

import ast
import re

from conftest import ROOT

STATE = ROOT / "app_pages" / "shared" / "state.py"
SPELLING = re.compile(r"^[a-z]+(-[a-z]+)*$")


def _is_session_state(node) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "session_state"


def _written_out(node) -> bool:
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))


def keys_written_in_place(path) -> list:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Subscript) and _is_session_state(node.value) and _written_out(node.slice):
            found.append(node.lineno)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and _is_session_state(node.func.value)
              and node.func.attr in ("get", "pop", "setdefault", "__setitem__", "__getitem__") and node.args
              and _written_out(node.args[0])):
            found.append(node.lineno)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and _is_session_state(node.func.value)
              and node.func.attr == "update" and node.args and isinstance(node.args[0], ast.Dict)
              and any(_written_out(k) for k in node.args[0].keys)):
            found.append(node.lineno)
    return found


def test_no_page_writes_a_session_state_key_out_in_place():
    files = [ROOT / "app.py", *sorted((ROOT / "app_pages").rglob("*.py"))]
    in_place = {str(p.relative_to(ROOT)): lines for p in files if p != STATE and (lines := keys_written_in_place(p))}
    assert in_place == {}, f"name these keys in {STATE.relative_to(ROOT)}"


def test_the_checker_finds_a_key_written_in_place(tmp_path):
    page = tmp_path / "page.py"
    page.write_text('import streamlit as st\nst.session_state["watched_run"] = 1\nst.session_state.get(f"pad-{1}")\n'
                    'st.session_state.update({"x": 1})\nst.session_state[KEY] = 2\n')
    assert keys_written_in_place(page) == [2, 3, 4]


def test_every_fixed_key_is_named_once_and_spelt_one_way():
    tree = ast.parse(STATE.read_text())
    keys = {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name) and isinstance(node.value, ast.Constant)}
    assert len(keys) > 20
    assert sorted(set(keys.values())) == sorted(keys.values()), "two names for one key"
    assert [k for k in keys.values() if not SPELLING.match(k)] == []
    made = re.findall(r'return f"([^"]+)"', STATE.read_text())  # the keys made per page, side or class
    assert made and all(SPELLING.match(re.sub(r"\{[^}]+\}", "x", k)) for k in made), made
