// TensorRT IPluginV3 "GridSample3D" (namespace "talkrt", version "1"): the 5-D GridSample that
// TensorRT lacks (IGridSampleLayer is 4-D only). Works on TensorRT 10.x (JetPack 6's 10.3 included)
// and 11.x. Built by CMakeLists.txt only where the TensorRT headers are found.
//
// Attributes (from the ONNX node export/trt_rewrite.py writes): align_corners (int32 0/1),
// mode (string, must be "linear"), padding_mode (string, must be "zeros"). Anything else is refused
// when the plugin is created, so an engine is never built with silently different sampling.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <NvInferRuntime.h>
#include <NvInferRuntimePlugin.h>

#include "grid_sample3d.h"

using namespace nvinfer1;

namespace {

char const* const kName = "GridSample3D";
char const* const kVersion = "1";
char const* const kNamespace = "talkrt";

void report(char const* what)
{
    std::fprintf(stderr, "talkrt GridSample3D plugin: %s\n", what);
}

class GridSample3DPlugin final : public IPluginV3, public IPluginV3OneCore, public IPluginV3OneBuild,
                                 public IPluginV3OneRuntime
{
public:
    explicit GridSample3DPlugin(int32_t alignCorners)
        : mAlignCorners(alignCorners)
    {
        mFields.emplace_back("align_corners", &mAlignCorners, PluginFieldType::kINT32, 1);
        mFields.emplace_back("mode", "linear", PluginFieldType::kCHAR, 7);
        mFields.emplace_back("padding_mode", "zeros", PluginFieldType::kCHAR, 6);
        mCollection.nbFields = static_cast<int32_t>(mFields.size());
        mCollection.fields = mFields.data();
    }

    // IPluginV3
    IPluginCapability* getCapabilityInterface(PluginCapabilityType type) noexcept override
    {
        switch (type) {
        case PluginCapabilityType::kCORE: return static_cast<IPluginV3OneCore*>(this);
        case PluginCapabilityType::kBUILD: return static_cast<IPluginV3OneBuild*>(this);
        case PluginCapabilityType::kRUNTIME: return static_cast<IPluginV3OneRuntime*>(this);
        }
        return nullptr;
    }
    IPluginV3* clone() noexcept override { return new GridSample3DPlugin(mAlignCorners); }

    // IPluginV3OneCore
    AsciiChar const* getPluginName() const noexcept override { return kName; }
    AsciiChar const* getPluginVersion() const noexcept override { return kVersion; }
    AsciiChar const* getPluginNamespace() const noexcept override { return kNamespace; }

    // IPluginV3OneBuild
    int32_t getNbOutputs() const noexcept override { return 1; }

    int32_t configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* /*out*/,
        int32_t nbOutputs) noexcept override
    {
        if (nbInputs != 2 || nbOutputs != 1 || in[0].desc.dims.nbDims != 5 || in[1].desc.dims.nbDims != 5) {
            report("wants input [N,C,D,H,W] and grid [N,Do,Ho,Wo,3]");
            return -1;
        }
        return 0;
    }

    int32_t getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes,
        int32_t nbInputs) const noexcept override
    {
        if (nbOutputs != 1 || nbInputs != 2) {
            return -1;
        }
        outputTypes[0] = inputTypes[0];
        return 0;
    }

    int32_t getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* /*shapeInputs*/,
        int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs, IExprBuilder& /*exprBuilder*/) noexcept override
    {
        if (nbInputs != 2 || nbOutputs != 1 || inputs[0].nbDims != 5 || inputs[1].nbDims != 5) {
            report("wants input [N,C,D,H,W] and grid [N,Do,Ho,Wo,3]");
            return -1;
        }
        outputs[0].nbDims = 5;
        outputs[0].d[0] = inputs[0].d[0];  // N
        outputs[0].d[1] = inputs[0].d[1];  // C
        outputs[0].d[2] = inputs[1].d[1];  // Do
        outputs[0].d[3] = inputs[1].d[2];  // Ho
        outputs[0].d[4] = inputs[1].d[3];  // Wo
        return 0;
    }

    bool supportsFormatCombination(
        int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t /*nbInputs*/, int32_t /*nbOutputs*/) noexcept override
    {
        PluginTensorDesc const& desc = inOut[pos].desc;
        if (desc.format != TensorFormat::kLINEAR) {
            return false;
        }
        if (pos == 0) {
            return desc.type == DataType::kFLOAT || desc.type == DataType::kHALF;
        }
        return desc.type == inOut[0].desc.type;  // grid and output follow the input's type
    }

    // IPluginV3OneRuntime
    int32_t onShapeChange(PluginTensorDesc const* /*in*/, int32_t /*nbInputs*/, PluginTensorDesc const* /*out*/,
        int32_t /*nbOutputs*/) noexcept override
    {
        return 0;
    }

    int32_t enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
        void const* const* inputs, void* const* outputs, void* /*workspace*/, cudaStream_t stream) noexcept override
    {
        Dims const& x = inputDesc[0].dims;
        Dims const& g = inputDesc[1].dims;
        talkrt::GridSample3DShape shape{int32_t(x.d[0]), int32_t(x.d[1]), int32_t(x.d[2]), int32_t(x.d[3]),
            int32_t(x.d[4]), int32_t(g.d[1]), int32_t(g.d[2]), int32_t(g.d[3]), mAlignCorners};
        int32_t const dtype = inputDesc[0].type == DataType::kHALF ? TALKRT_DTYPE_HALF : TALKRT_DTYPE_FLOAT;
        // no allocation and no sync here: the enqueue is safe inside a captured CUDA graph
        return talkrtGridSample3D(inputs[0], inputs[1], outputs[0], shape, dtype, stream);
    }

    IPluginV3* attachToContext(IPluginResourceContext* /*context*/) noexcept override { return clone(); }

    PluginFieldCollection const* getFieldsToSerialize() noexcept override { return &mCollection; }

private:
    int32_t mAlignCorners;
    std::vector<PluginField> mFields;
    PluginFieldCollection mCollection{};
};

class GridSample3DCreator final : public IPluginCreatorV3One
{
public:
    GridSample3DCreator()
    {
        mFields.emplace_back("align_corners", nullptr, PluginFieldType::kINT32, 1);
        mFields.emplace_back("mode", nullptr, PluginFieldType::kCHAR, 0);
        mFields.emplace_back("padding_mode", nullptr, PluginFieldType::kCHAR, 0);
        mCollection.nbFields = static_cast<int32_t>(mFields.size());
        mCollection.fields = mFields.data();
    }

    AsciiChar const* getPluginName() const noexcept override { return kName; }
    AsciiChar const* getPluginVersion() const noexcept override { return kVersion; }
    AsciiChar const* getPluginNamespace() const noexcept override { return kNamespace; }
    PluginFieldCollection const* getFieldNames() noexcept override { return &mCollection; }

    IPluginV3* createPlugin(AsciiChar const* /*name*/, PluginFieldCollection const* fc, TensorRTPhase /*phase*/) noexcept override
    {
        int32_t alignCorners = 0;
        for (int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i) {
            PluginField const& f = fc->fields[i];
            std::string const value = f.type == PluginFieldType::kCHAR && f.data != nullptr
                ? std::string(static_cast<char const*>(f.data), strnlen(static_cast<char const*>(f.data), f.length))
                : std::string();
            if (std::strcmp(f.name, "align_corners") == 0 && f.type == PluginFieldType::kINT32 && f.data != nullptr) {
                alignCorners = *static_cast<int32_t const*>(f.data) != 0;
            } else if (std::strcmp(f.name, "mode") == 0 && value != "linear" && value != "bilinear") {
                report(("only mode=linear is implemented, got " + value).c_str());
                return nullptr;
            } else if (std::strcmp(f.name, "padding_mode") == 0 && value != "zeros") {
                report(("only padding_mode=zeros is implemented, got " + value).c_str());
                return nullptr;
            }
        }
        return new GridSample3DPlugin(alignCorners);
    }

private:
    std::vector<PluginField> mFields;
    PluginFieldCollection mCollection{};
};

} // namespace

REGISTER_TENSORRT_PLUGIN(GridSample3DCreator);
