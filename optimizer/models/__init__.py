"""Model adapters (a registry of families behind model specs), MobileNetV2 and the zoo, split points,
head/tail construction, and zoo training."""

from __future__ import annotations

from optimizer.models._adapter import ModelAdapter, TorchvisionAdapter
from optimizer.models._bottleneck import BottleneckSpec, FactorizedPrior, LearnedBottleneck, conv_macs, prior_tables
from optimizer.models._bottleneck_io import LoadedBottleneck, bottleneck_name, load_bottleneck
from optimizer.models._bottleneck_train import BottleneckTrainConfig, train_bottleneck
from optimizer.models._evaluate import accuracy, predict
from optimizer.models._fx_macs import MAC_OPERATORS, count_macs
from optimizer.models._fx_split import GraphSplitPoint, SplitGraph
from optimizer.models._fx_trace import trace_model
from optimizer.models._hyperprior import HyperPrior, hyperprior_arrays
from optimizer.models._load import BuiltModel
from optimizer.models._mobilenetv2 import FAMILY, MIN_INPUT_SIZE, build_mobilenetv2, check_input_size, legacy_model_spec
from optimizer.models._registry import (
    adapter_for,
    build_model,
    get_adapter,
    list_adapters,
    load_spec_model,
    parse_model_spec,
    register_adapter,
    specs_from_family,
    split_graph,
)
from optimizer.models._runtime import OnnxRunner, onnx_bytes
from optimizer.models._spec import ModelSpec, Param
from optimizer.models._split import (
    SplitPoint,
    build_head,
    build_tail,
    features_of,
    num_blocks,
    split_points,
    split_range,
)
from optimizer.models._train import TrainConfig, TrainResult, train_zoo_model
from optimizer.models._weights import load_state_dict_file, torchvision_weights_path
from optimizer.models._zoo import (
    DEFAULT_SEARCH_SPACE,
    ZOO_DIR,
    LoadedModel,
    ZooEntry,
    find_zoo_entry,
    list_zoo,
    load_model,
    model_name,
    weights_for_alpha,
    zoo_name,
)

__all__ = [
    "DEFAULT_SEARCH_SPACE",
    "FAMILY",
    "BuiltModel",
    "ModelAdapter",
    "ModelSpec",
    "Param",
    "TorchvisionAdapter",
    "adapter_for",
    "build_model",
    "get_adapter",
    "list_adapters",
    "legacy_model_spec",
    "load_spec_model",
    "parse_model_spec",
    "register_adapter",
    "specs_from_family",
    "split_graph",
    "GraphSplitPoint",
    "MAC_OPERATORS",
    "SplitGraph",
    "count_macs",
    "trace_model",
    "BottleneckSpec",
    "BottleneckTrainConfig",
    "FactorizedPrior",
    "LearnedBottleneck",
    "LoadedBottleneck",
    "bottleneck_name",
    "conv_macs",
    "load_bottleneck",
    "prior_tables",
    "hyperprior_arrays",
    "HyperPrior",
    "train_bottleneck",
    "MIN_INPUT_SIZE",
    "ZOO_DIR",
    "LoadedModel",
    "OnnxRunner",
    "onnx_bytes",
    "SplitPoint",
    "TrainConfig",
    "TrainResult",
    "ZooEntry",
    "accuracy",
    "build_head",
    "build_mobilenetv2",
    "build_tail",
    "check_input_size",
    "features_of",
    "find_zoo_entry",
    "list_zoo",
    "load_model",
    "load_state_dict_file",
    "model_name",
    "num_blocks",
    "predict",
    "split_points",
    "split_range",
    "torchvision_weights_path",
    "train_zoo_model",
    "weights_for_alpha",
    "zoo_name",
]
