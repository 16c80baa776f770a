//! The raw configuration: serde structs mirroring Kamal 2.12's schema
//! (`lib/kamal/configuration/docs/*.yml`) key for key, with `deny_unknown_fields` so a typo is an
//! error with a did-you-mean. Values are as written; defaults and checks live in `validate/`.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A map whose key order is kept (env order becomes `--env` order).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderedMap<T>(pub Vec<(String, T)>);

impl<T> Default for OrderedMap<T> {
    fn default() -> Self {
        OrderedMap(Vec::new())
    }
}

impl<T> OrderedMap<T> {
    /// The value of `key` (last definition wins).
    pub fn get(&self, key: &str) -> Option<&T> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Iterate over keys and values in order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &T)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OrderedMap<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OrderedMap<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OrderedMap(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(String, T)> = Vec::new();
                while let Some(key) = map.next_key::<Scalar>()? {
                    let value = map.next_value::<T>()?;
                    entries.retain(|(k, _)| *k != key.0);
                    entries.push((key.0, value));
                }
                Ok(OrderedMap(entries))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// Any scalar, as text (Ruby's `to_s`): strings, numbers, booleans; nothing is `""`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(String::new()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(super::node::format_float(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// `true`/`false`, or a map of settings (role `proxy`, `proxy.ssl`).
#[derive(Debug, Clone, PartialEq)]
pub enum BoolOr<T> {
    /// `true` or `false`.
    Bool(bool),
    /// The settings.
    Settings(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for BoolOr<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = BoolOr<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true, false or a map")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(BoolOr::Bool(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(BoolOr::Settings)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// One value or a list of them (`builder.arch`, `ssh.config`, comma lists).
#[derive(Debug, Clone, PartialEq)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        OneOrMany(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<T>()? {
                    items.push(item);
                }
                Ok(OneOrMany(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|v| OneOrMany(vec![v]))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                one(de::value::StrDeserializer::new(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                one(de::value::BoolDeserializer::new(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                one(de::value::I64Deserializer::new(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                one(de::value::U64Deserializer::new(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                one(de::value::F64Deserializer::new(v))
            }
        }
        fn one<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
            d: D,
        ) -> Result<OneOrMany<T>, D::Error> {
            T::deserialize(d).map(|v| OneOrMany(vec![v]))
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A docker option value under `options:`: a scalar, `true` (bare flag) or a list (repeated).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum OptionValue {
    /// `true`: a bare flag; `false`: left out.
    Flag(bool),
    /// `--key "value"`.
    Value(String),
    /// `--key "a" --key "b"`.
    List(Vec<String>),
}

impl<'de> Deserialize<'de> for OptionValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OptionValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value, true, or a list of values")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<OptionValue, E> {
                Ok(OptionValue::Flag(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<OptionValue, E> {
                Ok(OptionValue::Flag(true))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<OptionValue, E> {
                Ok(OptionValue::Value(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<OptionValue, E> {
                Ok(OptionValue::Value(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<OptionValue, E> {
                Ok(OptionValue::Value(super::node::format_float(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OptionValue, E> {
                Ok(OptionValue::Value(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OptionValue, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Scalar>()? {
                    items.push(item.0);
                }
                Ok(OptionValue::List(items))
            }
        }
        d.deserialize_any(V)
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub service: Option<Scalar>,
    pub image: Option<Scalar>,
    pub labels: Option<OrderedMap<Scalar>>,
    pub volumes: Option<Vec<Scalar>>,
    pub registry: Option<RawRegistry>,
    pub servers: Option<RawServers>,
    pub env: Option<RawEnv>,
    pub asset_path: Option<Scalar>,
    pub hooks_path: Option<Scalar>,
    pub hooks_output: Option<RawHooksOutput>,
    pub secrets_path: Option<Scalar>,
    pub error_pages_path: Option<Scalar>,
    pub require_destination: Option<bool>,
    pub primary_role: Option<Scalar>,
    pub allow_empty_roles: Option<bool>,
    pub retain_containers: Option<i64>,
    pub minimum_version: Option<Scalar>,
    pub readiness_delay: Option<u64>,
    pub deploy_timeout: Option<u64>,
    pub drain_timeout: Option<u64>,
    pub stop_timeout: Option<u64>,
    pub run_directory: Option<Scalar>,
    pub ssh: Option<RawSsh>,
    pub sshkit: Option<RawSshkit>,
    pub builder: Option<RawBuilder>,
    pub accessories: Option<OrderedMap<RawAccessory>>,
    pub proxy: Option<RawProxy>,
    pub boot: Option<RawBoot>,
    pub logging: Option<RawLogging>,
    pub output: Option<RawOutput>,
    pub aliases: Option<OrderedMap<Scalar>>,
    #[serde(rename = "x-dray")]
    pub x_dray: Option<RawDray>,
}

/// `x-dray:`: dray's own settings (Kamal ignores `x-*` keys).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDray {
    pub hooks: Option<RawDrayHooks>,
    pub local_registry: Option<RawDrayLocalRegistry>,
    pub lock: Option<RawDrayLock>,
    pub proxy: Option<RawDrayProxy>,
    /// `x-dray: replicas: { <role>: N }`: containers of the role per host.
    pub replicas: Option<OrderedMap<u64>>,
    pub ssh: Option<RawDraySsh>,
}

/// `x-dray: proxy:`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDrayProxy {
    pub acme_directory: Option<String>,
    pub acme_ca_certs: Option<String>,
}

/// `x-dray: ssh:`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDraySsh {
    pub transport: Option<super::model::SshTransport>,
}

/// `x-dray: lock:`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDrayLock {
    pub stale_after: Option<u64>,
}

/// `x-dray: local_registry:`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDrayLocalRegistry {
    pub address: Option<String>,
}

/// `x-dray: hooks:`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDrayHooks {
    pub timeout: Option<u64>,
    pub post_deploy_locked: Option<bool>,
}

/// `registry:`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegistry {
    pub server: Option<Scalar>,
    pub username: Option<SecretOrValue>,
    pub password: Option<SecretOrValue>,
}

/// A literal value, or `[SECRET_NAME]`: a one-item list naming a secret.
#[derive(Debug, Clone, PartialEq)]
pub enum SecretOrValue {
    /// Written as is.
    Value(String),
    /// The names in a list (Kamal uses the first).
    Secret(Vec<String>),
}

impl<'de> Deserialize<'de> for SecretOrValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SecretOrValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, or a one-item list naming a secret")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SecretOrValue, E> {
                Ok(SecretOrValue::Value(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SecretOrValue, E> {
                Ok(SecretOrValue::Value(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SecretOrValue, E> {
                Ok(SecretOrValue::Value(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SecretOrValue, A::Error> {
                let mut names = Vec::new();
                while let Some(item) = seq.next_element::<Scalar>()? {
                    names.push(item.0);
                }
                Ok(SecretOrValue::Secret(names))
            }
        }
        d.deserialize_any(V)
    }
}

/// `servers:` as a list of hosts (role `web`) or a map of roles.
#[derive(Debug, Clone, PartialEq)]
pub enum RawServers {
    /// `servers: [host, …]`.
    List(Vec<RawHost>),
    /// `servers: {role: …}`.
    Roles(OrderedMap<RawRole>),
}

impl<'de> Deserialize<'de> for RawServers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawServers;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of hosts or a map of roles")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawServers, A::Error> {
                Vec::<RawHost>::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(RawServers::List)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawServers, A::Error> {
                OrderedMap::<RawRole>::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawServers::Roles)
            }
        }
        d.deserialize_any(V)
    }
}

/// A host with optional tags: `1.1.1.1`, `{1.1.1.2: tag}` or `{1.1.1.3: [t1, t2]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawHost {
    pub host: String,
    pub tags: Vec<String>,
}

impl<'de> Deserialize<'de> for RawHost {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawHost;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a host name, or a map of a host name to its tags")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawHost, E> {
                Ok(RawHost {
                    host: v.to_string(),
                    tags: Vec::new(),
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawHost, A::Error> {
                let Some(host) = map.next_key::<Scalar>()? else {
                    return Err(de::Error::custom(
                        "expected a host name, found an empty map",
                    ));
                };
                let tags = map.next_value::<OneOrMany<Scalar>>()?;
                if map.next_key::<Scalar>()?.is_some() {
                    return Err(de::Error::custom(
                        "expected one host per list item, found a map with several",
                    ));
                }
                Ok(RawHost {
                    host: host.0,
                    tags: tags.0.into_iter().map(|t| t.0).collect(),
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// A role: a bare host list, or its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum RawRole {
    /// `web: [host, …]`.
    Hosts(Vec<RawHost>),
    /// `web: {hosts: …, cmd: …}`.
    Settings(Box<RawRoleSettings>),
}

impl<'de> Deserialize<'de> for RawRole {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawRole;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of hosts or a map of role settings")
            }
            fn visit_unit<E: de::Error>(self) -> Result<RawRole, E> {
                Ok(RawRole::Hosts(Vec::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawRole, A::Error> {
                Vec::<RawHost>::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(RawRole::Hosts)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawRole, A::Error> {
                RawRoleSettings::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|s| RawRole::Settings(Box::new(s)))
            }
        }
        d.deserialize_any(V)
    }
}

/// `servers.<role>:` as a map.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoleSettings {
    pub hosts: Option<Vec<RawHost>>,
    pub cmd: Option<Scalar>,
    pub options: Option<OrderedMap<OptionValue>>,
    pub logging: Option<RawLogging>,
    pub proxy: Option<BoolOr<RawProxy>>,
    pub labels: Option<OrderedMap<Scalar>>,
    pub env: Option<RawEnv>,
    pub asset_path: Option<Scalar>,
    pub stop_timeout: Option<u64>,
}

/// `env:` in its simple form (all clear) or complex form (`clear`, `secret`, `tags`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawEnv {
    pub clear: OrderedMap<Scalar>,
    pub secret: Vec<String>,
    pub tags: OrderedMap<RawEnv>,
    /// Whether the complex form was used.
    pub complex: bool,
}

impl<'de> Deserialize<'de> for RawEnv {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawEnv;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of variables, or `clear`/`secret`/`tags`")
            }
            fn visit_unit<E: de::Error>(self) -> Result<RawEnv, E> {
                Ok(RawEnv::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawEnv, A::Error> {
                let mut env = RawEnv::default();
                let mut simple: Vec<(String, Scalar)> = Vec::new();
                while let Some(key) = map.next_key::<Scalar>()? {
                    match key.0.as_str() {
                        "clear" => {
                            env.complex = true;
                            env.clear = map.next_value()?;
                        }
                        "secret" => {
                            env.complex = true;
                            env.secret = map
                                .next_value::<Option<Vec<Scalar>>>()?
                                .unwrap_or_default()
                                .into_iter()
                                .map(|s| s.0)
                                .collect();
                        }
                        "tags" => {
                            env.complex = true;
                            env.tags = map.next_value()?;
                        }
                        _ => {
                            let value = map.next_value::<Scalar>()?;
                            simple.push((key.0, value));
                        }
                    }
                }
                if env.complex {
                    if let Some((key, _)) = simple.first() {
                        return Err(de::Error::custom(format!(
                            "unknown key `{key}`: with `clear`, `secret` or `tags`, variables go under `clear`"
                        )));
                    }
                } else {
                    env.clear = OrderedMap(simple);
                }
                Ok(env)
            }
        }
        d.deserialize_any(V)
    }
}

/// `hooks_output:` as one level or a map of hook name to level.
#[derive(Debug, Clone, PartialEq)]
pub enum RawHooksOutput {
    /// `quiet` or `verbose` for every hook.
    All(String),
    /// Per hook.
    PerHook(OrderedMap<Scalar>),
}

impl<'de> Deserialize<'de> for RawHooksOutput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawHooksOutput;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`quiet`, `verbose`, or a map of hook names to one of those")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawHooksOutput, E> {
                Ok(RawHooksOutput::All(v.trim_start_matches(':').to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawHooksOutput, A::Error> {
                OrderedMap::<Scalar>::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawHooksOutput::PerHook)
            }
        }
        d.deserialize_any(V)
    }
}

/// `ssh:`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSsh {
    pub user: Option<Scalar>,
    pub port: Option<Scalar>,
    pub proxy: Option<Scalar>,
    pub proxy_command: Option<Scalar>,
    pub log_level: Option<Scalar>,
    pub keys_only: Option<bool>,
    pub keys: Option<Vec<Scalar>>,
    pub key_data: Option<Vec<Scalar>>,
    pub config: Option<OneOrMany<Scalar>>,
    pub forward_agent: Option<bool>,
}

/// `sshkit:`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSshkit {
    pub max_concurrent_starts: Option<u64>,
    pub pool_idle_timeout: Option<u64>,
    pub dns_retries: Option<u64>,
}

/// `builder:`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBuilder {
    pub arch: Option<OneOrMany<Scalar>>,
    pub remote: Option<Scalar>,
    pub local: Option<bool>,
    pub pack: Option<RawPack>,
    pub cache: Option<RawCache>,
    pub context: Option<Scalar>,
    pub dockerfile: Option<Scalar>,
    pub target: Option<Scalar>,
    pub args: Option<OrderedMap<Scalar>>,
    pub secrets: Option<Vec<Scalar>>,
    pub ssh: Option<Scalar>,
    pub driver: Option<Scalar>,
    pub provenance: Option<Scalar>,
    pub sbom: Option<Scalar>,
}

/// `builder.pack:`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPack {
    pub builder: Option<Scalar>,
    pub buildpacks: Option<Vec<Scalar>>,
}

/// `builder.cache:`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    #[serde(rename = "type")]
    pub kind: Option<Scalar>,
    pub options: Option<Scalar>,
    pub image: Option<Scalar>,
}

/// `proxy:` (root, role or accessory).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProxy {
    pub host: Option<Scalar>,
    pub hosts: Option<Vec<Scalar>>,
    pub app_port: Option<u64>,
    pub ssl: Option<BoolOr<RawSsl>>,
    pub ssl_redirect: Option<bool>,
    pub forward_headers: Option<bool>,
    pub response_timeout: Option<u64>,
    pub path_prefix: Option<Scalar>,
    pub path_prefixes: Option<Vec<Scalar>>,
    pub strip_path_prefix: Option<bool>,
    pub healthcheck: Option<RawHealthcheck>,
    pub buffering: Option<RawBuffering>,
    pub logging: Option<RawProxyLogging>,
    pub run: Option<RawProxyRun>,
}

/// `proxy.ssl:` as a map (custom certificate).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSsl {
    pub certificate_pem: Option<Scalar>,
    pub private_key_pem: Option<Scalar>,
}

/// `proxy.healthcheck:`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthcheck {
    pub interval: Option<u64>,
    pub path: Option<Scalar>,
    pub timeout: Option<u64>,
}

/// `proxy.buffering:`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBuffering {
    pub requests: Option<bool>,
    pub responses: Option<bool>,
    pub max_request_body: Option<u64>,
    pub max_response_body: Option<u64>,
    pub memory: Option<u64>,
}

/// `proxy.logging:`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProxyLogging {
    pub request_headers: Option<Vec<Scalar>>,
    pub response_headers: Option<Vec<Scalar>>,
}

/// `proxy.run:`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProxyRun {
    pub http_port: Option<u64>,
    pub https_port: Option<u64>,
    pub metrics_port: Option<u64>,
    pub debug: Option<bool>,
    pub log_max_size: Option<Scalar>,
    pub publish: Option<bool>,
    pub bind_ips: Option<Vec<Scalar>>,
    pub registry: Option<Scalar>,
    pub repository: Option<Scalar>,
    pub version: Option<Scalar>,
    pub options: Option<OrderedMap<OptionValue>>,
}

/// `boot:`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBoot {
    pub limit: Option<Scalar>,
    pub wait: Option<u64>,
    pub parallel_roles: Option<bool>,
}

/// `logging:`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogging {
    pub driver: Option<Scalar>,
    pub options: Option<OrderedMap<Scalar>>,
}

/// `output:`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    pub file: Option<RawOutputFile>,
    pub otel: Option<RawOutputOtel>,
}

/// `output.file:`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutputFile {
    pub path: Option<Scalar>,
}

/// `output.otel:`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutputOtel {
    pub endpoint: Option<Scalar>,
}

/// `accessories.<name>:`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccessory {
    pub service: Option<Scalar>,
    pub image: Option<Scalar>,
    pub registry: Option<RawAccessoryRegistry>,
    pub host: Option<Scalar>,
    pub hosts: Option<Vec<Scalar>>,
    pub role: Option<Scalar>,
    pub roles: Option<Vec<Scalar>>,
    pub tag: Option<Scalar>,
    pub tags: Option<Vec<Scalar>>,
    pub cmd: Option<Scalar>,
    pub port: Option<Scalar>,
    pub labels: Option<OrderedMap<Scalar>>,
    pub options: Option<OrderedMap<OptionValue>>,
    pub env: Option<RawEnv>,
    pub files: Option<Vec<RawFileSpec>>,
    pub directories: Option<Vec<RawFileSpec>>,
    pub volumes: Option<Vec<Scalar>>,
    pub network: Option<Scalar>,
    pub proxy: Option<RawProxy>,
}

/// An accessory's own `registry:` (same keys as the root one).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccessoryRegistry {
    pub server: Option<Scalar>,
    pub username: Option<SecretOrValue>,
    pub password: Option<SecretOrValue>,
}

/// An accessory file or directory: `local:remote[:options]` or a map.
#[derive(Debug, Clone, PartialEq)]
pub enum RawFileSpec {
    /// `local:remote[:options]`.
    Short(String),
    /// `{local, remote, mode, owner, options}`.
    Long(RawFileSpecLong),
}

/// The map form of an accessory file or directory.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFileSpecLong {
    pub local: Option<Scalar>,
    pub remote: Option<Scalar>,
    pub mode: Option<Scalar>,
    pub owner: Option<Scalar>,
    pub options: Option<Scalar>,
}

impl<'de> Deserialize<'de> for RawFileSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawFileSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`local:remote` or a map with `local` and `remote`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawFileSpec, E> {
                Ok(RawFileSpec::Short(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawFileSpec, A::Error> {
                RawFileSpecLong::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawFileSpec::Long)
            }
        }
        d.deserialize_any(V)
    }
}
