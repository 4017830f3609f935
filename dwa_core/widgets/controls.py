"""The explorer's controls, generated from dataclasses: one control per init field, a dropdown for a
`typing.Literal` field, a bool or a str field that is a fidelity switch (dwa_core.fidelity), a
number box or a text box otherwise; the tooltip is the field's documentation (`field_docs`).

Where the tooltip lands in the page: ipywidgets 8 puts `tooltip` into the DOM as a `title` only on
some views (a text box or a dropdown with a description drops it, a checkbox shows its own name), so
every control's description is its name inside `<span title="documentation">` (`labelled`)."""

from __future__ import annotations

import dataclasses
import html
import inspect
import types
import typing

import ipywidgets as W

from dwa_core import fidelity, models
from dwa_core.config import ConfigError, build_params

FIELD_STYLE = {"description_width": "130px"}  # the tabs' controls: aligned in a 3-column grid


def field_docs(cls: type) -> dict[str, str]:
    """{field: its documentation} as declared with the field (dwa_core.fields.docs), the tooltips."""
    from dwa_core.fields import docs

    return docs(cls)


def choices(owner: str, name: str, hint) -> tuple | None:
    """The fixed values a field takes: its Literal arguments, else (for a str field) the two values
    of its fidelity switch, else None (a free value)."""
    hint = _strip_optional(hint)
    if typing.get_origin(hint) is typing.Literal:
        return typing.get_args(hint)
    if hint is str:
        for switch in fidelity.SWITCHES:
            if (switch.owner, switch.field) == (owner, name):
                return tuple(dict.fromkeys(v for v in (switch.default, switch.original) if v is not None))
    return None


def _strip_optional(hint):
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0] if len(rest) == 1 else hint
    return hint


def _optional(hint) -> bool:
    return type(None) in typing.get_args(hint)


def labelled(name: str, doc: str) -> dict:
    """The description keywords of a control named `name`: its name, with `doc` as the hover text
    that reaches the page whatever the widget's view (see the module docstring)."""
    text = html.escape(doc or name, quote=True)
    return dict(description=f'<span title="{text}">{html.escape(name)}</span>', description_allow_html=True,
                tooltip=doc or name)


def shown(value) -> str:
    """A value as the controls show it (text boxes, the runs' labels): None as '', a float by %g
    where that is exact, a curriculum as 'kind:E:start' (':power' when not 2)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}" if float(f"{value:g}") == value else repr(value)
    if type(value).__name__ == "Curriculum":
        power = "" if value.power == 2.0 else f":{value.power:g}"
        return f"{value.kind}:{value.epochs}:{value.start:g}{power}"
    return str(value)


def control(name: str, hint, default, doc: str = "", options: tuple | None = None) -> W.Widget:
    """One control: dropdown (fixed values, bool), int/float box, or text (str, and optional values
    where an empty box means None)."""
    kw = dict(style=FIELD_STYLE, layout=W.Layout(width="auto"), **labelled(name, doc))
    base = _strip_optional(hint)
    if base is bool and not _optional(hint):
        options = (True, False)
    if options:
        opts = list(options) + ([default] if default not in options else [])
        if not all(isinstance(o, str) for o in opts):  # True/False, None: shown as text
            opts = [(shown(o) or "None", o) for o in opts]
        return W.Dropdown(options=opts, value=default, **kw)
    if base is int and not _optional(hint):
        return W.IntText(value=int(default), **kw)
    if base is float and not _optional(hint):
        return W.FloatText(value=float(default), **kw)
    return W.Text(value=shown(default), placeholder="None" if _optional(hint) else "",
                  continuous_update=False, **kw)


class Form:
    """Controls for the init fields of a dataclass `cls`, with defaults `defaults` (field -> value)."""

    def __init__(self, cls: type, owner: str, defaults: dict | None = None, switch_owner: str | None = None):
        self.cls, self.owner = cls, owner
        hints = typing.get_type_hints(cls)
        docs = field_docs(cls)
        self.defaults = {f.name: f.default if f.default is not dataclasses.MISSING else None
                         for f in dataclasses.fields(cls) if f.init}
        self.defaults.update({k: v for k, v in (defaults or {}).items() if k in self.defaults})
        self.controls = {name: control(name, hints[name], value, docs.get(name, ""),
                                       choices(switch_owner or owner, name, hints[name]))
                         for name, value in self.defaults.items()}

    def values(self) -> dict:
        """Every field's value as typed: text boxes give strings ('' = None), coerced by build_params."""
        out = {}
        for name, w in self.controls.items():
            value = w.value
            if isinstance(w, W.Text) and not isinstance(w, W.Dropdown):
                value = None if value.strip() in ("", "None") else value.strip()
            out[name] = value
        return out

    def typed(self) -> dict:
        """values() coerced and validated by the dataclass (a bad value raises ConfigError)."""
        instance = build_params(self.cls, self.values(), self.owner)
        return {k: getattr(instance, k) for k in self.controls}

    def load(self, values: dict) -> None:
        """Set every control to `values` (field -> value, any form the dataclass coerces), fields
        left out to the dataclass's default; an unknown field or a bad value raises ConfigError."""
        unknown = sorted(set(values) - set(self.controls))
        if unknown:
            raise ConfigError(f"{self.owner}: unknown field(s) {', '.join(unknown)}; "
                              f"valid: {', '.join(self.controls)}")
        instance = build_params(self.cls, values, self.owner)
        for name, w in self.controls.items():
            value = getattr(instance, name)
            w.value = shown(value) if type(w) is W.Text else value

    def changed(self) -> dict:
        """The typed fields whose value differs from the dataclass's own defaults."""
        return {k: v for k, v in self.typed().items() if not same_value(v, _default_of(self.cls, k))}


def same_value(a, b) -> bool:
    """Equal, or equal as text (a control's '0.1' and the field's 0.1)."""
    return a == b or (a is not None and b is not None and str(a) == str(b))


def network_options(arch: str, family: str) -> dict:
    """{option: default} of the int/float keyword options of the network class (its size)."""
    cls = models.NETWORKS.get(models.network_name(arch, family))
    out = {}
    for p in inspect.signature(cls.__init__).parameters.values():
        if isinstance(p.default, (int, float)) and not isinstance(p.default, bool):
            out[p.name] = p.default
    return out


def _default_of(cls: type, name: str):
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    return f.default if f.default is not dataclasses.MISSING else None


def network_form(arch: str, family: str, defaults: dict) -> Form:
    """Controls for the size options of network `arch` of `family` (network_options), as a Form."""
    from dwa_core.fields import Spec, spec_of

    options = network_options(arch, family)
    cls = models.NETWORKS.get(models.network_name(arch, family))
    annotations = models.constructor_parameters(cls)
    docs = {k: getattr(spec_of(annotations.get(k, (None,))[0]), "doc", "") or
            f"keyword option {k} of {cls.__name__} (default {v})" for k, v in options.items()}
    fields = [(k, type(v), dataclasses.field(default=v, metadata={"spec": Spec(doc=docs[k])}))
              for k, v in options.items()]
    cls = dataclasses.make_dataclass(f"{arch}_{family}", fields, frozen=True)
    return Form(cls, "network", defaults)
