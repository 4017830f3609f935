import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def tiny_cfg(tmp_path):
    """A seconds-long split-digits run: a small MLP, a few epochs, results under tmp_path."""
    from dwa_core import ExperimentConfig, TrainConfig

    return ExperimentConfig(
        benchmark="split-digits", approach="sgd", seed=0, output_dir=str(tmp_path / "runs"),
        train=TrainConfig(epochs=3, batch_size=32, lr=0.1),
        benchmark_params={"per_class": 40}, network_params={"hidden": 32, "layers": 2},
    )


@pytest.fixture
def interrupt_and_resume():
    """A function: run `cfg`, stop it after task 1 (an exception at the task boundary), run it
    again; returns (results of the second run, the tasks the second run trained epochs of)."""
    from dwa_core.experiment import run_experiment

    class Interrupt(Exception):
        pass

    def run(cfg):
        def stop_after_task_1(t, results):
            if t == 1:
                raise Interrupt

        with pytest.raises(Interrupt):
            run_experiment(cfg, on_task=stop_after_task_1)
        trained = []
        results = run_experiment(cfg, on_epoch=lambda t, e, row: trained.append(t))
        return results, trained

    return run
