"""The lab's CPU model: OUTPUT0 = INPUT0 + INPUT1, with a configurable compute time.

The compute time per request comes from the model config parameter
``compute_ms`` so that a slower "release" can be simulated exactly, as a sleep
(``compute_kind: sleep``) or as real CPU work (``cpu``): a fixed number of small
matrix products, calibrated at start-up so that they take ``compute_ms`` on an
idle core, or exactly ``compute_iterations`` of them when that parameter is set
(benchmarks give two "releases" one shared calibration that way). CPU work slows down when another process takes the core, the way
real inference does; a sleep does not.

The Python backend stub runs whatever interpreter its libpython belongs to,
in isolated mode, with that interpreter's numpy.  Its pybind11 numpy bridge
was built against numpy 1.x: under numpy 2 ``Tensor(name, ndarray)`` and
``as_numpy()`` silently read the wrong bytes, so with numpy 2 the tensors go
through DLPack instead (which in turn fails under numpy 1.24).
"""

import json
import time

import numpy as np
import triton_python_backend_utils as pb_utils

NUMPY2 = int(np.__version__.split(".")[0]) >= 2


def _in(request, name):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return np.from_dlpack(tensor) if NUMPY2 else tensor.as_numpy()


def _out(name, array):
    array = np.ascontiguousarray(array)
    return pb_utils.Tensor.from_dlpack(name, array) if NUMPY2 else pb_utils.Tensor(name, array)


KERNEL = np.random.default_rng(0).random((48, 48))
# Scaled by its spectral radius, the product neither grows nor decays: a constant factor (it was 0.01)
# shrank m to subnormal floats after ~450 iterations, which cost ~100x each and made the work's time
# jump instead of grow with the iteration count.
SCALE = 1.0 / float(np.max(np.abs(np.linalg.eigvals(KERNEL))))


def _work(iterations):
    m = KERNEL
    for _ in range(iterations):
        m = (m @ KERNEL) * SCALE
    return m


def calibrate(target_s):
    """Iterations of the kernel that take ``target_s`` on this core: the best of five timed batches."""
    if target_s <= 0:
        return 0
    per = None
    for _ in range(5):
        t0 = time.perf_counter()
        _work(200)
        dt = (time.perf_counter() - t0) / 200
        per = dt if per is None else min(per, dt)
    return max(1, int(round(target_s / per)))


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = config.get("parameters", {})
        self.delay_s = float(params.get("compute_ms", {}).get("string_value", "0") or 0) / 1000.0
        self.kind = params.get("compute_kind", {}).get("string_value", "sleep") or "sleep"
        # An explicit iteration count (compute_iterations > 0) skips the calibration: two servers given
        # counts in the ratio 1 : 1.05 do work in exactly that ratio, whatever each one's start-up saw.
        fixed = int(params.get("compute_iterations", {}).get("string_value", "0") or 0)
        self.iterations = (fixed or calibrate(self.delay_s)) if self.kind == "cpu" else 0

    def execute(self, requests):
        responses = []
        for request in requests:
            a = _in(request, "INPUT0")
            b = _in(request, "INPUT1")
            if self.iterations:
                _work(self.iterations)
            elif self.delay_s:
                time.sleep(self.delay_s)
            responses.append(pb_utils.InferenceResponse([_out("OUTPUT0", a + b)]))
        return responses
