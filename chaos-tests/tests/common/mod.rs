pub mod dev_node;
pub mod lazyfs_dir;
