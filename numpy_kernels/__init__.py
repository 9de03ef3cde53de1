"""Vectorised NumPy kernels, one module per family, mirroring ``cuda_kernels/`` name for name.

| family       | functions                                                              |
|--------------|------------------------------------------------------------------------|
| conv         | conv2d_fwd, conv2d_bwd_data, conv2d_bwd_weight, conv2d_bwd_bias, im2col, col2im |
| pooling      | max_pool2d_fwd / _bwd, avg_pool2d_fwd / _bwd                           |
| activation   | relu_fwd, relu_bwd                                                     |
| softmax_ce   | softmax_cross_entropy_fwd / _bwd                                       |
| optim        | sgd_update, adam_update                                                |
| random       | uniform, normal (counter-based: a hash of seed and offset)            |
| checks       | flag_outside_range                                                     |
| embedding    | embedding_bwd (a deterministic scatter-add)                            |
| layer_norm   | layer_norm_fwd, layer_norm_bwd                                         |
| recurrent    | lstm_cell_fwd / _bwd, gru_cell_fwd / _bwd (one step's pointwise part)  |
| linalg       | matmul (rows split over threads, BLAS on one thread)                   |

``_parallel`` holds the thread pool (``set_num_threads``) and the per-thread scratch buffers.
"""
