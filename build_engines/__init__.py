"""Model definitions, ONNX export, TensorRT engine build and Triton model-repository generation."""
