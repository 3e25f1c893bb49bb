//! A minimal QMP client: one connection per command, which keeps it simple
//! and makes a wedged connection impossible to leak.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

pub async fn execute(socket: &Path, command: &str) -> Result<serde_json::Value, String> {
    let fut = async {
        let stream = UnixStream::connect(socket).await.map_err(|e| format!("QMP connect {}: {e}", socket.display()))?;
        let (r, mut w) = stream.into_split();
        let mut lines = BufReader::new(r).lines();
        // Greeting, then capabilities negotiation, then the command.
        lines.next_line().await.map_err(|e| e.to_string())?;
        for cmd in ["qmp_capabilities", command] {
            let msg = serde_json::json!({ "execute": cmd }).to_string() + "\n";
            w.write_all(msg.as_bytes()).await.map_err(|e| e.to_string())?;
            loop {
                let line = lines.next_line().await.map_err(|e| e.to_string())?.ok_or("QMP closed")?;
                let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| e.to_string())?;
                if v.get("event").is_some() {
                    continue;
                }
                if let Some(err) = v.get("error") {
                    return Err(format!("QMP {cmd}: {err}"));
                }
                if cmd == command {
                    return Ok(v.get("return").cloned().unwrap_or(serde_json::Value::Null));
                }
                break;
            }
        }
        Err("QMP: no answer".to_string())
    };
    tokio::time::timeout(Duration::from_secs(10), fut).await.map_err(|_| "QMP timed out".to_string())?
}
