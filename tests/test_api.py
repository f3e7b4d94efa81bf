"""The Python API (alta.api, re-exported by `import alta`): the commands' work from Python,
checked against the task oracles and the stages it wraps."""

import pytest
from helpers import PROGRAMS

import alta
from alta.api import Model, Run
from alta.interpreter import run as interpret
from alta.tasks import find_task


def test_load_takes_a_path_source_text_or_a_checkpoint(tmp_path, compiled):
    by_path = alta.load(PROGRAMS / "parity.alta")
    by_text = alta.load((PROGRAMS / "parity.alta").read_text())
    assert isinstance(by_path, alta.Program) and by_path.name == by_text.name == "parity"
    assert by_path.ir.variables == by_text.ir.variables
    saved = Model(compiled("parity")).save(tmp_path / "parity.safetensors")
    model = alta.load(saved)
    assert isinstance(model, alta.Model) and model.name == "parity"
    with pytest.raises(alta.AltaError, match="no such file"):
        alta.load(tmp_path / "missing.alta")
    with pytest.raises(alta.AltaError, match="no 'vocab' declaration"):
        alta.load("program x\n")


@pytest.mark.parametrize("name", ["parity", "addition"])
def test_both_back_ends_print_the_oracles_outputs(name, compiled):
    program = alta.load(PROGRAMS / f"{name}.alta")
    task = find_task(program.ir)
    texts = task.inputs(40, min(task.size, 10), seed=5)
    expected = tuple(task.oracle(t) for t in texts)
    interpreted = program.run(texts)
    assert interpreted.outputs == expected and interpreted.backend == "interpreter"
    assert interpreted.layers == tuple(interpret(program.ir, texts).layers.tolist())
    model = Model(compiled(name))
    ran = model.run(texts)
    assert ran.outputs == expected and ran.layers == interpreted.layers
    assert all(ran.halted) and ran.backend == "compiled"
    assert model.run(texts[0]).outputs == expected[:1]  # one string is one input


def test_verify_and_test_report_agreement(compiled):
    model = Model(compiled("parity"))
    report = model.verify(samples=12, size=10)
    assert report.ok and report.inputs == 12 and report.comparisons > 0
    assert model.verify(["1 0 1", "0"]).inputs == 2
    outcome = alta.load(PROGRAMS / "parity.alta").test(samples=8, size=6, compiled=False)
    assert outcome.ok and len(outcome.sampled) == 8


def test_results_print_as_tables_and_html():
    program = alta.load(PROGRAMS / "parity.alta")
    result = program.run(["1 0 1 1", "1 1"])
    text = repr(result)
    assert text.splitlines()[0] == "Run of parity on the interpreter, 2 inputs"
    assert text.splitlines()[2].split() == ["1", "0", "1", "1", "1", "4"]
    assert "<td><code>1 1</code></td><td><code>0</code></td><td>2</td>" in result._repr_html_()
    odd = Run(program.ir, "compiled", ("<b>&",), ("<i>",), (1,), (False,), None)
    assert "&lt;b&gt;&amp;" in odd._repr_html_() and "(did not halt)" in odd._repr_html_()
    assert "on the compiled model" in repr(odd)
    assert repr(program).startswith("program parity")
    traced = program.run("1 0", trace=True).trace()
    assert traced.startswith("initial state") and "layer 2, after the MLP" in traced
    assert traced.endswith("halted after 2 layers; output: 1")
    with pytest.raises(ValueError, match="one input"):
        result.trace()


def test_every_public_name_is_documented():
    for name in alta.__all__:
        value = getattr(alta, name)
        assert name == "__version__" or (value.__doc__ or "").strip(), name
    for cls in (alta.Program, alta.Model, alta.Run):
        for attr, member in vars(cls).items():
            if not attr.startswith("_") and callable(member):
                assert (member.__doc__ or "").strip(), f"{cls.__name__}.{attr}"
