"""The lab's CPU model: OUTPUT0 = INPUT0 + INPUT1, with a configurable compute time.

The compute time per request comes from the model config parameter
``compute_ms`` so that a slower "release" can be simulated exactly.

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


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = config.get("parameters", {})
        self.delay_s = float(params.get("compute_ms", {}).get("string_value", "0") or 0) / 1000.0

    def execute(self, requests):
        responses = []
        for request in requests:
            a = _in(request, "INPUT0")
            b = _in(request, "INPUT1")
            if self.delay_s:
                time.sleep(self.delay_s)
            responses.append(pb_utils.InferenceResponse([_out("OUTPUT0", a + b)]))
        return responses
