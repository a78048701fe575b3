//! Process concerns around the mail paths: signals and logging.

pub mod logging;
pub mod shutdown;
