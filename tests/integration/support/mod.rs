//! What the integration tests share: the lab VM harness ([`lab`]), the EC2
//! stand-in ([`ec2`]), and a throwaway PKI for TLS tests ([`pki`]).

#![allow(dead_code)]

pub mod ec2;
pub mod lab;
pub mod pki;
