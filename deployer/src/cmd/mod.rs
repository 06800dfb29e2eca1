//! The commands, above the Kubernetes layer (`crate::k8s`): `up` (with `install`, step 1,
//! and `status::summary`), `down`, `scale`, `status`, `token`. `state` is what they read back from
//! the cluster before rendering. Nothing below calls up into these.

pub mod cert_manager;
pub mod down;
pub mod install;
pub mod scale;
pub mod state;
pub mod status;
pub mod token;
pub mod up;
