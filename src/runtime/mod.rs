//! Process concerns around the mail paths: signals (stop and reload), the
//! systemd notification protocol, and logging. Nothing here touches mail.

pub mod logging;
pub mod reload;
pub mod shutdown;
pub mod systemd;
