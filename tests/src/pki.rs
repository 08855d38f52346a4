//! Certificates made in the test (rcgen): a CA, and certificates it signs for
//! servers and clients, written as PEM files where a process needs them.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use std::path::{Path, PathBuf};

/// A test CA.
pub struct TestCa {
    pub pem: String,
    params: CertificateParams,
    key: KeyPair,
}

/// A certificate the CA signed, and its key: both PEM.
pub struct Issued {
    pub certificate_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("CA key");
        let pem = params
            .clone()
            .self_signed(&key)
            .expect("CA certificate")
            .pem();
        TestCa { pem, params, key }
    }

    /// A certificate for `names` (DNS names or IP addresses).
    pub fn issue(&self, names: &[&str]) -> Issued {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let params = CertificateParams::new(names).expect("leaf params");
        let key = KeyPair::generate().expect("leaf key");
        let issuer = self.params.clone().self_signed(&self.key).expect("issuer");
        let certificate = params.signed_by(&key, &issuer, &self.key).expect("leaf");
        Issued {
            certificate_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes the CA's PEM into `dir` as `name`.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.pem).expect("write CA");
        path
    }
}

impl Issued {
    /// Writes the certificate and key into `dir` as `<name>.pem` and `<name>.key`.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let certificate = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&certificate, &self.certificate_pem).expect("write certificate");
        std::fs::write(&key, &self.key_pem).expect("write key");
        (certificate, key)
    }
}
