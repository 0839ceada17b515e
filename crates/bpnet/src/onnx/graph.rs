//! A small builder for ONNX graphs over the generated protobuf types: f32
//! initializers, nodes with attributes, and 2-D tensor signatures with a
//! symbolic batch dimension.

use super::proto::attribute_proto::AttributeType;
use super::proto::tensor_proto::DataType;
use super::proto::tensor_shape_proto::{Dimension, dimension};
use super::proto::type_proto::{self, Tensor as TensorType};
use super::proto::{AttributeProto, GraphProto, NodeProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto};

/// Name of the symbolic (dynamic) batch dimension of inputs and outputs.
pub const BATCH_DIM: &str = "batch";

/// Nodes and initializers of one graph, in topological order.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
}

impl Graph {
    /// Adds a constant f32 tensor of shape `dims` (row-major `data`, empty
    /// `dims` for a scalar) and returns its name.
    pub fn constant(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(name, dims, DataType::Float, raw)
    }

    /// Adds a constant f64 tensor of shape `dims` and returns its name.
    pub fn constant_f64(&mut self, name: &str, dims: &[usize], data: &[f64]) -> String {
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(name, dims, DataType::Double, raw)
    }

    /// Adds an initializer of `data_type` holding the little-endian `raw`.
    fn initializer(&mut self, name: &str, dims: &[usize], data_type: DataType, raw: Vec<u8>) -> String {
        self.initializers.push(TensorProto {
            name: Some(name.to_string()),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(data_type as i32),
            raw_data: Some(raw),
            ..TensorProto::default()
        });
        name.to_string()
    }

    /// Adds a node `op(inputs) -> output` named `name` and returns `output`.
    /// An empty input name marks an omitted optional input.
    pub fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        output: &str,
        attributes: Vec<AttributeProto>,
    ) -> String {
        self.nodes.push(NodeProto {
            op_type: Some(op.to_string()),
            name: Some(name.to_string()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            attribute: attributes,
            ..NodeProto::default()
        });
        output.to_string()
    }

    /// Operator types of the nodes, in order.
    pub fn op_types(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| n.op_type.clone().unwrap_or_default())
            .collect()
    }

    /// Whether `name` is the name of an initializer or of a node's output
    /// other than the last node's (which becomes the graph output).
    pub fn holds_name(&self, name: &str) -> bool {
        let inner = self.nodes.len().saturating_sub(1);
        self.initializers.iter().any(|t| t.name.as_deref() == Some(name))
            || self.nodes[..inner].iter().any(|n| n.output.iter().any(|o| o == name))
    }

    /// Renames the output of the last node to `name` (the graph output);
    /// returns false if there is no node.
    pub fn rename_last_output(&mut self, name: &str) -> bool {
        match self.nodes.last_mut().and_then(|n| n.output.first_mut()) {
            Some(out) => {
                *out = name.to_string();
                true
            }
            None => false,
        }
    }

    /// The finished graph with one input and one output.
    pub fn finish(self, name: &str, doc: &str, input: ValueInfoProto, output: ValueInfoProto) -> GraphProto {
        GraphProto {
            node: self.nodes,
            name: Some(name.to_string()),
            initializer: self.initializers,
            doc_string: Some(doc.to_string()),
            input: vec![input],
            output: vec![output],
            ..GraphProto::default()
        }
    }
}

/// An integer attribute.
pub(crate) fn attr_int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(value),
        ..AttributeProto::default()
    }
}

/// A float attribute.
pub(crate) fn attr_float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(value),
        ..AttributeProto::default()
    }
}

/// A string attribute.
pub(crate) fn attr_string(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(AttributeType::String as i32),
        s: Some(value.as_bytes().to_vec()),
        ..AttributeProto::default()
    }
}

/// A float tensor `[batch, width]` (f32, or f64 where `double`) with the
/// symbolic batch dimension [`BATCH_DIM`].
pub(crate) fn batch_matrix(name: &str, width: usize, doc: &str, double: bool) -> ValueInfoProto {
    let dims = vec![
        Dimension {
            value: Some(dimension::Value::DimParam(BATCH_DIM.to_string())),
            ..Dimension::default()
        },
        Dimension {
            value: Some(dimension::Value::DimValue(width as i64)),
            ..Dimension::default()
        },
    ];
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(TensorType {
                elem_type: Some(if double { DataType::Double } else { DataType::Float } as i32),
                shape: Some(TensorShapeProto { dim: dims }),
            })),
            ..TypeProto::default()
        }),
        doc_string: Some(doc.to_string()),
        ..ValueInfoProto::default()
    }
}
