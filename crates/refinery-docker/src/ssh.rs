//! `ssh://[user@]host[:port][/socket]` engines, reached as the docker CLI does: each HTTP
//! connection is one `ssh … docker system dial-stdio` process whose stdin/stdout carry the bytes.
//! Connections are pooled by hyper, so a pass does not start one ssh per request.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Where an `ssh://` endpoint points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The engine's socket on the remote host (`--host unix://…` of the remote docker CLI).
    pub socket: Option<String>,
    /// The ssh client to run (`ssh`; configure it in `~/.ssh/config` as for the docker CLI).
    pub program: String,
}

impl SshTarget {
    /// Parses what follows `ssh://`. The message says what is wrong.
    pub fn parse(rest: &str) -> Result<SshTarget, String> {
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i..])),
            None => (rest, None),
        };
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) if !u.is_empty() => (Some(u.to_owned()), h),
            Some(_) => return Err("the user name before `@` is empty".to_owned()),
            None => (None, authority),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') || h.starts_with('[') => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| format!("`{p}` is not a port number"))?;
                (h.trim_start_matches('[').trim_end_matches(']'), Some(port))
            }
            _ => (hostport, None),
        };
        if host.is_empty() {
            return Err("the host name is empty".to_owned());
        }
        if host.starts_with('-') || user.as_deref().is_some_and(|u| u.starts_with('-')) {
            return Err("a host or user name may not start with `-`".to_owned());
        }
        let socket = path.filter(|p| *p != "/").map(str::to_owned);
        Ok(SshTarget {
            user,
            host: host.to_owned(),
            port,
            socket,
            program: "ssh".to_owned(),
        })
    }

    /// The program and arguments that open one connection to the engine (as the docker CLI:
    /// `ssh -l user -p port -- host docker system dial-stdio`). `BatchMode` because a daemon has
    /// no terminal to ask for a password or a host key.
    #[must_use]
    pub fn command(&self) -> (String, Vec<String>) {
        let program = self.program.clone();
        let mut args = vec![
            "-o".to_owned(),
            "BatchMode=yes".to_owned(),
            "-o".to_owned(),
            "ConnectTimeout=10".to_owned(),
        ];
        if let Some(user) = &self.user {
            args.extend(["-l".to_owned(), user.clone()]);
        }
        if let Some(port) = self.port {
            args.extend(["-p".to_owned(), port.to_string()]);
        }
        args.extend(["--".to_owned(), self.host.clone(), "docker".to_owned()]);
        if let Some(socket) = &self.socket {
            args.extend(["--host".to_owned(), format!("unix://{socket}")]);
        }
        args.extend(["system".to_owned(), "dial-stdio".to_owned()]);
        (program, args)
    }
}

/// What ssh said on stderr last (why a connection failed), shared with the transport.
pub type LastStderr = Arc<Mutex<String>>;

/// The `ssh` transport failed: what `ssh` said on stderr. Carried inside the I/O error the
/// request fails with, so the error's conversion can tell it from any other connection failure.
#[derive(Debug, thiserror::Error)]
#[error("ssh to `{host}` failed: {said}")]
pub struct SshFailed {
    pub host: String,
    pub said: String,
}

/// Opens connections by starting ssh.
#[derive(Clone)]
pub struct SshConnector {
    pub target: Arc<SshTarget>,
    pub stderr: LastStderr,
}

impl tower_service::Service<http::Uri> for SshConnector {
    type Response = TokioIo<SshStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: http::Uri) -> Self::Future {
        let (program, args) = self.target.command();
        let last = Arc::clone(&self.stderr);
        Box::pin(async move {
            let mut child = Command::new(&program)
                .args(&args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        format!("failed to run `{program}`: {e}"),
                    )
                })?;
            let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                return Err(io::Error::other("ssh has no stdin or stdout"));
            };
            if let Some(mut err) = child.stderr.take() {
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let _ = err.read_to_end(&mut buf).await;
                    let text = String::from_utf8_lossy(&buf).trim().to_owned();
                    if !text.is_empty()
                        && let Ok(mut l) = last.lock()
                    {
                        *l = text;
                    }
                });
            }
            Ok(TokioIo::new(SshStream {
                _child: child,
                stdin,
                stdout,
            }))
        })
    }
}

/// One `dial-stdio` process; dropping it kills ssh.
pub struct SshStream {
    _child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
}

impl Connection for SshStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for SshStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for SshStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_target_user_host_port_socket_parse() {
        let t = SshTarget::parse("deploy@lyra:2222/run/docker.sock").expect("parses");
        assert_eq!(t.user.as_deref(), Some("deploy"));
        assert_eq!(t.host, "lyra");
        assert_eq!(t.port, Some(2222));
        assert_eq!(t.socket.as_deref(), Some("/run/docker.sock"));
    }

    #[test]
    fn ssh_target_host_only_parses() {
        let t = SshTarget::parse("lyra").expect("parses");
        assert_eq!(t.user, None);
        assert_eq!(t.port, None);
        assert_eq!(t.socket, None);
    }

    #[test]
    fn ssh_target_bad_port_or_empty_host_is_refused() {
        assert!(SshTarget::parse("me@lyra:abc").is_err());
        assert!(SshTarget::parse("me@").is_err());
        assert!(SshTarget::parse("@lyra").is_err());
        assert!(SshTarget::parse("-oProxyCommand=x").is_err());
    }

    #[test]
    fn ssh_command_is_dial_stdio_like_the_docker_cli() {
        let t = SshTarget::parse("deploy@lyra:2222").expect("parses");
        let (_, args) = t.command();
        assert_eq!(
            args.join(" "),
            "-o BatchMode=yes -o ConnectTimeout=10 -l deploy -p 2222 -- lyra docker system dial-stdio"
        );
        let t = SshTarget::parse("lyra/var/run/docker.sock").expect("parses");
        let (_, args) = t.command();
        assert_eq!(
            args.join(" "),
            "-o BatchMode=yes -o ConnectTimeout=10 -- lyra docker --host unix:///var/run/docker.sock system dial-stdio"
        );
    }
}
