"""ONNX's own backend tests (onnx.backend.test.BackendTest) run on fastconv through
fastconv.onnx_backend.FastconvBackend.

Which tests are in scope: every node test whose graph uses only the operators fastconv
imports (SCOPE_OPS: the converters of fastconv.onnx_import, including the ops it folds
in constant shape chains), and the bundled pytorch-converted / pytorch-operator model
tests that use only those operators. Each of them is either run (INCLUDED_NODE,
INCLUDED_MODEL) or listed in EXCLUDED with the reason; test_every_test_in_scope_is_listed
checks that nothing in scope is left out (a newer onnx adding tests makes it fail until
they are sorted). The data of the pytorch-converted and pytorch-operator tests is
bundled with the onnx package (onnx/backend/test/data); nothing is downloaded. The "real"
model tests (ResNet-50, VGG-19, ...) would need downloads and use operators outside the
list; they are not selected.

Only the CPU variants run (the backend has no other device); excluded tests are kept as
skips whose message is the reason.
"""
from __future__ import annotations

import re
import unittest
import warnings

import pytest

onnx = pytest.importorskip("onnx")

from onnx.backend.test.loader import load_model_tests  # noqa: E402
import onnx.backend.test  # noqa: E402

from fastconv.onnx_backend import FastconvBackend  # noqa: E402

SCOPE_OPS = {
    "Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Relu",
    "LeakyRelu", "Softmax", "LRN", "BatchNormalization", "Dropout", "Flatten", "Reshape",
    "Gemm", "MatMul", "Add", "Sum", "Concat", "Identity", "Constant", "ConstantOfShape",
    # folded in constant chains (and Unsqueeze/Squeeze/Cast-to-float also at run time)
    "Shape", "Gather", "Unsqueeze", "Squeeze", "Cast",
}

INCLUDED_NODE = """
test_add test_add_bcast
test_averagepool_1d_default test_averagepool_2d_ceil
test_averagepool_2d_ceil_last_window_starts_on_pad test_averagepool_2d_default
test_averagepool_2d_dilations test_averagepool_2d_pads
test_averagepool_2d_pads_count_include_pad test_averagepool_2d_precomputed_pads
test_averagepool_2d_precomputed_pads_count_include_pad
test_averagepool_2d_precomputed_same_upper test_averagepool_2d_precomputed_strides
test_averagepool_2d_same_lower test_averagepool_2d_same_upper test_averagepool_2d_strides
test_basic_conv_with_padding test_basic_conv_without_padding
test_batchnorm_epsilon test_batchnorm_example
test_cast_DOUBLE_to_FLOAT test_cast_FLOAT16_to_FLOAT
test_castlike_DOUBLE_to_FLOAT_expanded test_castlike_FLOAT16_to_FLOAT_expanded
test_concat_2d_axis_1 test_concat_2d_axis_negative_1 test_concat_3d_axis_1
test_concat_3d_axis_2 test_concat_3d_axis_negative_1 test_concat_3d_axis_negative_2
test_constant test_constantofshape_float_ones test_constantofshape_int_shape_zero
test_constantofshape_int_zeros
test_conv_with_autopad_same test_conv_with_strides_and_asymmetric_padding
test_conv_with_strides_no_padding test_conv_with_strides_padding
test_dropout_default test_dropout_default_ratio test_dropout_random_old
test_flatten_axis1 test_flatten_default_axis
test_gemm_alpha test_gemm_beta test_gemm_default_matrix_bias test_gemm_default_no_bias
test_gemm_default_scalar_bias test_gemm_default_single_elem_vector_bias
test_gemm_default_vector_bias test_gemm_default_zero_bias test_gemm_transposeB
test_globalaveragepool test_globalaveragepool_precomputed test_globalmaxpool
test_globalmaxpool_precomputed
test_identity
test_leakyrelu test_leakyrelu_default
test_lrn test_lrn_default
test_matmul_2d
test_maxpool_1d_default test_maxpool_2d_ceil test_maxpool_2d_ceil_output_size_reduce_by_one
test_maxpool_2d_default test_maxpool_2d_dilations test_maxpool_2d_pads
test_maxpool_2d_precomputed_pads test_maxpool_2d_precomputed_same_upper
test_maxpool_2d_precomputed_strides test_maxpool_2d_same_lower test_maxpool_2d_same_upper
test_maxpool_2d_strides
test_relu
test_reshape_extended_dims test_reshape_negative_dim test_reshape_reduced_dims
test_reshape_reordered_last_dims test_reshape_zero_and_negative_dim test_reshape_zero_dim
test_shape_start_1 test_shape_start_1_end_2 test_shape_start_1_end_negative_1
test_shape_start_greater_than_end test_shape_start_negative_1
test_softmax_axis_0 test_softmax_axis_1 test_softmax_axis_2 test_softmax_default_axis
test_softmax_example test_softmax_large_number test_softmax_negative_axis
test_squeeze_negative_axes
test_unsqueeze_axis_1 test_unsqueeze_axis_2 test_unsqueeze_negative_axes
test_unsqueeze_three_axes test_unsqueeze_two_axes test_unsqueeze_unsorted_axes
""".split()

# pytorch-converted / pytorch-operator (opset 6 files, upgraded by onnx's version
# converter; the stride/padding/dilation MaxPools are opset 12). test_Linear_no_bias also
# has a Transpose, of its constant weight, which is evaluated at load.
INCLUDED_MODEL = """
test_AvgPool1d test_AvgPool1d_stride test_AvgPool2d test_AvgPool2d_stride
test_BatchNorm1d_3d_input_eval test_BatchNorm2d_eval test_BatchNorm2d_momentum_eval
test_BatchNorm3d_eval test_BatchNorm3d_momentum_eval
test_Conv1d test_Conv1d_dilated test_Conv1d_groups test_Conv1d_pad1 test_Conv1d_pad1size1
test_Conv1d_pad2 test_Conv1d_pad2size1 test_Conv1d_stride
test_Conv2d test_Conv2d_depthwise test_Conv2d_depthwise_padded test_Conv2d_depthwise_strided
test_Conv2d_depthwise_with_multiplier test_Conv2d_dilated test_Conv2d_groups
test_Conv2d_groups_thnn test_Conv2d_no_bias test_Conv2d_padding test_Conv2d_strided
test_LeakyReLU test_LeakyReLU_with_negval test_Linear test_Linear_no_bias
test_MaxPool1d test_MaxPool1d_stride test_MaxPool1d_stride_padding_dilation
test_MaxPool2d test_MaxPool2d_stride_padding_dilation
test_ReLU test_Softmax test_softmax_functional_dim3 test_softmax_lastdim
test_operator_addmm test_operator_concat2 test_operator_conv test_operator_flatten
test_operator_maxpool test_operator_mm
""".split()

_3D = "3-D (volumetric) case: out of scope, fastconv runs 1-D and 2-D maps"
_INT = ("integer tensors: fastconv computes in float32; the backend binds integer inputs "
        "as constants, so the graph would only be evaluated at load, not run")
_RANK1 = ("rank-1 input: with fastconv's batch axis in front a sample would have no axes "
          "(fastconv samples have at least one)")
_BATCH = "mixes the batch axis with the others (fastconv keeps the batch axis separate)"
_MATMUL = "MatMul beyond 2-D: out of scope (fastconv runs [N, K] x [K, M])"
_TRAIN = "training mode: fastconv runs inference only"
_MASK = "Dropout's bool mask output: fastconv tensors are float32"
_ARGMAX = "MaxPool's Indices output (argmax): not supported"
_SHAPE = ("the output is the input's shape including the batch size, an int64 runtime "
          "value: fastconv folds Shape only inside constant chains")
_GATHER = "Gather of a runtime tensor: fastconv folds Gather only inside constant chains"
_CAST = ("Cast to or from a type other than float16/float32/float64 at run time: fastconv "
         "tensors are float32 (Cast is folded in constant chains)")
_CAST64 = "Cast to float16/float64: fastconv's runtime tensors are float32"
_OPT = "optional / sequence types: fastconv runs tensors only"
_F64 = ("float64 test data from uninitialised memory (values up to 1e228 and denormals): "
        "beyond float32, which fastconv computes in")

with warnings.catch_warnings():
    # onnx computes the expected outputs of its node tests on import (Cast overflows...)
    warnings.simplefilter("ignore")
    _NODE_TESTS = load_model_tests(kind="node")

EXCLUDED = {}
for _name in """
test_averagepool_3d_default test_averagepool_3d_dilations_small
test_averagepool_3d_dilations_large_count_include_pad_is_0_ceil_mode_is_False
test_averagepool_3d_dilations_large_count_include_pad_is_0_ceil_mode_is_True
test_averagepool_3d_dilations_large_count_include_pad_is_1_ceil_mode_is_False
test_averagepool_3d_dilations_large_count_include_pad_is_1_ceil_mode_is_True
test_maxpool_3d_default test_maxpool_3d_dilations test_maxpool_3d_dilations_use_ref_impl
test_maxpool_3d_dilations_use_ref_impl_large
test_AvgPool3d test_AvgPool3d_stride test_AvgPool3d_stride1_pad0_gpu_input
test_Conv3d test_Conv3d_dilated test_Conv3d_dilated_strided test_Conv3d_groups
test_Conv3d_no_bias test_Conv3d_stride test_Conv3d_stride_padding
test_MaxPool3d test_MaxPool3d_stride test_MaxPool3d_stride_padding
""".split():
    EXCLUDED[_name] = _3D
for _name in """
test_add_int16 test_add_int8 test_add_uint16 test_add_uint32 test_add_uint64 test_add_uint8
test_maxpool_2d_uint8 test_clip_default_int8_inbounds_expanded
test_Embedding test_Embedding_sparse test_operator_non_float_params
""".split():
    EXCLUDED[_name] = _INT
for _name in """
test_clip_default_inbounds_expanded test_concat_1d_axis_0 test_concat_1d_axis_negative_1
test_dropout_default_old test_gather_negative_indices test_leakyrelu_example
test_matmul_1d_1d test_matmul_1d_3d test_sum_example test_sum_one_input test_sum_two_inputs
test_operator_view
""".split():
    EXCLUDED[_name] = _RANK1
for _name in """
test_concat_2d_axis_0 test_concat_2d_axis_negative_2 test_concat_3d_axis_0
test_concat_3d_axis_negative_3
test_flatten_axis0 test_flatten_axis2 test_flatten_axis3 test_flatten_negative_axis1
test_flatten_negative_axis2 test_flatten_negative_axis3 test_flatten_negative_axis4
test_reshape_negative_extended_dims test_reshape_one_dim test_reshape_reordered_all_dims
test_reshape_allowzero_reordered test_unsqueeze_axis_0 test_squeeze
""".split():
    EXCLUDED[_name] = _BATCH
EXCLUDED["test_gemm_transposeA"] = _BATCH + " (transA=1: A's rows are the batch, its " \
                                           "columns would be)"
EXCLUDED["test_gemm_all_attributes"] = EXCLUDED["test_gemm_transposeA"]
for _name in "test_matmul_3d test_matmul_4d test_matmul_4d_1d test_matmul_bcast".split():
    EXCLUDED[_name] = _MATMUL
for _name in """
test_batchnorm_epsilon_training_mode test_batchnorm_example_training_mode
test_training_dropout test_training_dropout_default test_training_dropout_default_mask
test_training_dropout_mask test_training_dropout_zero_ratio
test_training_dropout_zero_ratio_mask
""".split():
    EXCLUDED[_name] = _TRAIN
EXCLUDED["test_dropout_default_mask"] = _MASK
EXCLUDED["test_dropout_default_mask_ratio"] = _MASK
EXCLUDED["test_maxpool_with_argmax_2d_precomputed_pads"] = _ARGMAX
EXCLUDED["test_maxpool_with_argmax_2d_precomputed_strides"] = _ARGMAX
for _name in """
test_shape test_shape_clip_end test_shape_clip_start test_shape_end_1
test_shape_end_negative_1 test_shape_example
""".split():
    EXCLUDED[_name] = _SHAPE
for _name in "test_gather_0 test_gather_1 test_gather_2d_indices".split():
    EXCLUDED[_name] = _GATHER
EXCLUDED["test_identity_opt"] = _OPT
EXCLUDED["test_identity_sequence"] = _OPT
for _name in """
test_operator_add_broadcast test_operator_add_size1_broadcast
test_operator_add_size1_right_broadcast test_operator_add_size1_singleton_broadcast
test_operator_addconstant
""".split():
    EXCLUDED[_name] = _F64
_CAST_NAME = re.compile(r"^test_cast(?:like)?_(?:no_saturate_|e8m0_)?([A-Z0-9]+)_to_"
                        r"([A-Z0-9]+)(?:_expanded)?$")
for _t in _NODE_TESTS:     # the many Cast tests, by their types
    _m = _CAST_NAME.match(_t.name)
    if _m and _t.name not in INCLUDED_NODE:
        _src, _dst = _m.groups()
        EXCLUDED[_t.name] = _CAST64 if _src in ("FLOAT", "FLOAT16", "DOUBLE") and \
            _dst in ("FLOAT16", "DOUBLE") else _CAST

def _ops_of(model) -> set:
    return {n.op_type for n in model.graph.node}


def _in_scope_node_tests():
    return {t.name for t in _NODE_TESTS if _ops_of(t.model) <= SCOPE_OPS}


def _in_scope_model_tests():
    out = set()
    for kind in ("pytorch-converted", "pytorch-operator"):
        for t in load_model_tests(kind=kind):
            if t.model_dir is None:
                continue
            m = onnx.load(f"{t.model_dir}/model.onnx")
            if _ops_of(m) <= SCOPE_OPS:
                out.add(t.name)
    return out


# ---------------------------------------------------------------------------- the tests

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    _backend_test = onnx.backend.test.BackendTest(FastconvBackend, __name__)

_INCLUDED = set(INCLUDED_NODE) | set(INCLUDED_MODEL)
for _name in sorted(_INCLUDED):
    _backend_test.include(rf"^{_name}_cpu$")
for _name in sorted(EXCLUDED):
    _backend_test.include(rf"^{_name}_cpu$")


def _skipper(reason):
    @unittest.skip(reason)
    def test(self):
        pass   # pragma: no cover
    return test


for _cls_name, _cls in _backend_test.test_cases.items():
    for _attr in [a for a in vars(_cls) if a.startswith("test_")]:
        _base = _attr[:-len("_cpu")] if _attr.endswith("_cpu") else None
        if _base in _INCLUDED:
            continue
        if _base in EXCLUDED:
            setattr(_cls, _attr, _skipper(EXCLUDED[_base]))
        else:
            delattr(_cls, _attr)            # not in scope (or another device)
    if any(a.startswith("test_") for a in vars(_cls)):
        globals()[_cls_name] = _cls
del _cls


def test_lists_are_disjoint_and_known():
    assert not (_INCLUDED & set(EXCLUDED)), sorted(_INCLUDED & set(EXCLUDED))
    known = {t.name for t in _NODE_TESTS}
    for kind in ("pytorch-converted", "pytorch-operator"):
        known |= {t.name for t in load_model_tests(kind=kind)}
    unknown = sorted((_INCLUDED | set(EXCLUDED)) - known)
    assert not unknown, f"names that are not ONNX backend tests: {unknown}"


def test_every_test_in_scope_is_listed():
    missing = sorted((_in_scope_node_tests() | _in_scope_model_tests())
                     - _INCLUDED - set(EXCLUDED))
    assert not missing, f"backend tests in scope but neither included nor excluded: {missing}"


def test_counts():
    """The numbers the report quotes (changes here are deliberate)."""
    assert len(INCLUDED_NODE) == len(set(INCLUDED_NODE)) >= 100
    assert len(INCLUDED_MODEL) == len(set(INCLUDED_MODEL)) >= 40
    assert all(isinstance(r, str) and len(r) > 20 for r in EXCLUDED.values())


def test_run_node_and_run_model():
    import numpy as np
    from onnx import TensorProto, helper

    from fastconv import onnx_backend

    x = np.array([[-1.0, 2.0, -3.0]], np.float32)
    (y,) = onnx_backend.run_node(helper.make_node("LeakyRelu", ["x"], ["y"], alpha=0.5), [x])
    np.testing.assert_array_equal(y, [[-0.5, 2.0, -1.5]])
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (y,) = onnx_backend.run_model(model, [x])
    np.testing.assert_array_equal(y, [[0.0, 2.0, 0.0]])
    (y,) = onnx_backend.prepare(model.SerializeToString()).run({"x": x})
    np.testing.assert_array_equal(y, [[0.0, 2.0, 0.0]])
    assert onnx_backend.supports_device("CPU") and not onnx_backend.supports_device("CUDA")
