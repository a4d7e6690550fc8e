"""nimwarden: security compliance harness for NVIDIA NIM, NeMo microservices and Triton."""

__version__ = "0.1.0"
