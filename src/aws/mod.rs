//! AWS conventions the tool shares between its client and its gateway:
//! credentials the AWS way ([`credentials`]) and SigV4 presigned URLs
//! ([`sigv4`]), as AWS's own EC2 Instance Connect tunnel uses them.

pub mod credentials;
pub mod sigv4;
