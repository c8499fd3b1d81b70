// C interface of the 3-D grid sample kernel (kernels/cuda/grid_sample3d.cu).
#pragma once

#include <cstdint>
#include <cuda_runtime_api.h>

#include "grid_sample3d.cuh"

#define TALKRT_DTYPE_FLOAT 0
#define TALKRT_DTYPE_HALF 1

// Enqueue on `stream`; input/output NCDHW, grid [N, Do, Ho, Wo, 3] of the same dtype.
// Returns 0 or a cudaError_t value (-1 for an unsupported dtype).
extern "C" int talkrtGridSample3D(void const* input, void const* grid, void* output, talkrt::GridSample3DShape shape,
    int32_t dataType, cudaStream_t stream);

// The same per-voxel code looped on the host: lets CPU-only machines check the kernel's arithmetic.
extern "C" int talkrtGridSample3DHost(void const* input, void const* grid, void* output, talkrt::GridSample3DShape shape,
    int32_t dataType);
