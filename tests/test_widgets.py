"""The explorer builds without a browser, generates controls from Params, trains and replays."""

import ipywidgets as W

from dwa_core import widgets


def test_controls_follow_the_approach_params():
    ex = widgets.Explorer(approach="sgd", train=False)
    ex.approach.value = "ewc"
    import dataclasses

    from dwa_core import approaches

    assert list(ex.params) == [f.name for f in dataclasses.fields(approaches.get("ewc").Params)]
    assert isinstance(ex.widget, W.VBox)


def test_changed_param_is_passed_to_the_config():
    ex = widgets.Explorer(approach="ewc", train=False)
    name, w = next((n, w) for n, w in ex.params.items() if isinstance(w, W.FloatText))
    w.value = w.value * 2 + 1.0
    assert ex.config().approach_params == {name: w.value}


def test_run_trains_with_progress_then_replays(tmp_path):
    ex = widgets.Explorer(approach="sgd", epochs=1, per_class=5, results_dir=tmp_path)
    assert ex.output.outputs == ()
    res = ex.run()
    assert res is not None and res.finished
    assert ex.progress.value == ex.progress.max == 5
    assert ex.figure is not None and len(ex.output.outputs) == 1
    assert ex.draws == 6  # live: once per task, then the final plot
    assert "done" in ex.status.value
    # no training in replay mode: a second explorer reads the cached run
    ex2 = widgets.Explorer(approach="sgd", epochs=1, per_class=5, results_dir=tmp_path, train=False)
    again = ex2.run()
    assert again is not None and again.acc == res.acc
    assert "replayed" in ex2.status.value


def test_train_false_does_not_train(tmp_path):
    ex = widgets.Explorer(approach="sgd", epochs=1, per_class=5, results_dir=tmp_path, train=False)
    assert ex.run() is None
    assert "training disabled" in ex.status.value
    assert not any(tmp_path.iterdir())
