// C interface of the 3-D grid sample kernel (kernels/cuda/grid_sample3d.cu).
#pragma once

#include <cstdint>
#include <cuda_runtime_api.h>

namespace talkrt {

struct GridSample3DShape {
    int32_t n, c, d, h, w;     // input volume
    int32_t dOut, hOut, wOut;  // output voxels per item (from the grid)
    int32_t alignCorners;      // 0 or 1
};

} // namespace talkrt

#define TALKRT_DTYPE_FLOAT 0
#define TALKRT_DTYPE_HALF 1

// Enqueue on `stream`; input/output NCDHW, grid [N, Do, Ho, Wo, 3] of the same dtype.
// Returns 0 or a cudaError_t value (-1 for an unsupported dtype).
extern "C" int talkrtGridSample3D(void const* input, void const* grid, void* output, talkrt::GridSample3DShape shape,
    int32_t dataType, cudaStream_t stream);

// The same per-voxel code looped on the host: lets CPU-only machines check the kernel's arithmetic.
extern "C" int talkrtGridSample3DHost(void const* input, void const* grid, void* output, talkrt::GridSample3DShape shape,
    int32_t dataType);
