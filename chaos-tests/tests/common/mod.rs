pub mod dev_node;
pub mod harness_cluster;
pub mod lazyfs_dir;
