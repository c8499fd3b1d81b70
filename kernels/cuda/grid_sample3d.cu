// CUDA 3-D grid sample kernel, its launcher (used by the TensorRT plugin) and a host loop over the
// same per-voxel code (used by the CPU test in tests/kernels/test_grid_sample3d_cuda.py).
#include "grid_sample3d.h"
#include "grid_sample3d.cuh"

namespace {

constexpr int kThreads = 256;

template <typename T, typename G>
__global__ void gridSample3DKernel(T const* input, G const* grid, T* output, talkrt::GridSample3DShape s, int64_t total)
{
    int64_t const voxel = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (voxel < total) {
        talkrt::sampleVoxel(input, grid, output, s, voxel);
    }
}

int64_t outputVoxels(talkrt::GridSample3DShape const& s)
{
    return int64_t(s.n) * s.dOut * s.hOut * s.wOut;
}

template <typename T, typename G>
void runHost(void const* input, void const* grid, void* output, talkrt::GridSample3DShape s)
{
    int64_t const total = outputVoxels(s);
    for (int64_t v = 0; v < total; ++v) {
        talkrt::sampleVoxel(static_cast<T const*>(input), static_cast<G const*>(grid), static_cast<T*>(output), s, v);
    }
}

} // namespace

extern "C" int talkrtGridSample3D(void const* input, void const* grid, void* output, talkrt::GridSample3DShape shape,
    int32_t dataType, cudaStream_t stream)
{
    int64_t const total = outputVoxels(shape);
    if (total == 0) {
        return 0;
    }
    unsigned const blocks = unsigned((total + kThreads - 1) / kThreads);
    if (dataType == TALKRT_DTYPE_HALF) {
        gridSample3DKernel<<<blocks, kThreads, 0, stream>>>(static_cast<__half const*>(input),
            static_cast<__half const*>(grid), static_cast<__half*>(output), shape, total);
    } else if (dataType == TALKRT_DTYPE_FLOAT) {
        gridSample3DKernel<<<blocks, kThreads, 0, stream>>>(static_cast<float const*>(input),
            static_cast<float const*>(grid), static_cast<float*>(output), shape, total);
    } else {
        return -1;
    }
    return int(cudaGetLastError());
}

extern "C" int talkrtGridSample3DHost(void const* input, void const* grid, void* output, talkrt::GridSample3DShape shape,
    int32_t dataType)
{
    if (dataType == TALKRT_DTYPE_HALF) {
        runHost<__half, __half>(input, grid, output, shape);
    } else if (dataType == TALKRT_DTYPE_FLOAT) {
        runHost<float, float>(input, grid, output, shape);
    } else {
        return -1;
    }
    return 0;
}
