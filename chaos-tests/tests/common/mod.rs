pub mod dev_node;
