//! A fake GitLab generic package registry on loopback (tiny_http): files are served by `GET` and
//! stored by `PUT`, at `/api/v4/projects/7/packages/generic/<package>/<version>/<file>`, as the
//! pipeline a `flagops init` writes downloads releases and the release job publishes them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tiny_http::{Response, Server};

/// The path of the registry's `flagops` package.
pub(crate) const PACKAGE_PATH: &str = "/api/v4/projects/7/packages/generic/flagops";

/// One request the registry answered.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    /// The `JOB-TOKEN` header, if any.
    pub(crate) job_token: Option<String>,
}

#[derive(Default)]
struct Store {
    files: BTreeMap<String, Vec<u8>>,
    requests: Vec<Request>,
}

pub(crate) struct PackageRegistry {
    server: Arc<Server>,
    port: u16,
    store: Arc<Mutex<Store>>,
    thread: Option<JoinHandle<()>>,
}

impl PackageRegistry {
    /// Starts the registry on `127.0.0.1` with a free port. `PUT` needs `JOB-TOKEN: job_token`.
    pub(crate) fn start(job_token: &str) -> PackageRegistry {
        let server = Arc::new(Server::http("127.0.0.1:0").expect("bind 127.0.0.1"));
        let port = server.server_addr().to_ip().expect("an IP address").port();
        let store = Arc::new(Mutex::new(Store::default()));
        let thread = {
            let (server, store, job_token) = (server.clone(), store.clone(), job_token.to_string());
            std::thread::spawn(move || {
                for mut request in server.incoming_requests() {
                    let token = request
                        .headers()
                        .iter()
                        .find(|h| h.field.equiv("JOB-TOKEN"))
                        .map(|h| h.value.as_str().to_string());
                    let path = request.url().to_string();
                    let method = request.method().as_str().to_string();
                    let mut store = store.lock().unwrap();
                    store.requests.push(Request {
                        method: method.clone(),
                        path: path.clone(),
                        job_token: token.clone(),
                    });
                    let response = match method.as_str() {
                        "GET" => match store.files.get(&path) {
                            Some(body) => Response::from_data(body.clone()),
                            None => Response::from_string("404 Not Found").with_status_code(404),
                        },
                        "PUT" if token.as_deref() == Some(job_token.as_str()) => {
                            let mut body = Vec::new();
                            request.as_reader().read_to_end(&mut body).unwrap();
                            store.files.insert(path, body);
                            Response::from_string("{\"message\":\"201 Created\"}").with_status_code(201)
                        }
                        "PUT" => Response::from_string("401 Unauthorized").with_status_code(401),
                        _ => Response::from_string("405").with_status_code(405),
                    };
                    drop(store);
                    let _ = request.respond(response);
                }
            })
        };
        PackageRegistry {
            server,
            port,
            store,
            thread: Some(thread),
        }
    }

    /// The API's base URL, as GitLab's `CI_API_V4_URL`.
    pub(crate) fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v4", self.port)
    }

    /// The `flagops` package's URL, as `FLAGOPS_DOWNLOAD_URL` takes it.
    pub(crate) fn package_url(&self) -> String {
        format!("http://127.0.0.1:{}{PACKAGE_PATH}", self.port)
    }

    /// Puts `body` at `<package>/<version>/<file>`.
    pub(crate) fn put(&self, version: &str, file: &str, body: Vec<u8>) {
        let path = format!("{PACKAGE_PATH}/{version}/{file}");
        self.store.lock().unwrap().files.insert(path, body);
    }

    /// What is stored at `<package>/<version>/<file>`.
    pub(crate) fn get(&self, version: &str, file: &str) -> Option<Vec<u8>> {
        let path = format!("{PACKAGE_PATH}/{version}/{file}");
        self.store.lock().unwrap().files.get(&path).cloned()
    }

    /// Every request answered so far.
    pub(crate) fn requests(&self) -> Vec<Request> {
        self.store.lock().unwrap().requests.clone()
    }
}

impl Drop for PackageRegistry {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The SHA-256 of `bytes` in hexadecimal, as `sha256sum` prints it.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
