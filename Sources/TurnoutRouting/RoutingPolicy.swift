/// Where the stable cohort key of a request comes from, in order of preference: a
/// configured cookie, a configured header, the bucket cookie Turnout issues, the client
/// address.
public struct CohortPolicy: Hashable, Sendable {
    /// A cookie that identifies the user (e.g. `user_id`), if any.
    public var cookie: String?
    /// A header that identifies the user (e.g. `X-User-Id`), if any.
    public var header: String?
    /// The cookie in which Turnout stores a visitor's bucket; nil: none is issued.
    public var bucketCookie: BucketCookiePolicy?

    public init(cookie: String? = nil, header: String? = nil, bucketCookie: BucketCookiePolicy? = nil) {
        self.cookie = cookie
        self.header = header
        self.bucketCookie = bucketCookie
    }
}

/// The bucket cookie: it holds the visitor's bucket (never a pool), so a change of the
/// split or a rollback applies to every visitor at once.
public struct BucketCookiePolicy: Hashable, Sendable {
    public var name: String
    public var maxAgeSeconds: Int

    public init(name: String = "turnout_bucket", maxAgeSeconds: Int = 30 * 86_400) {
        self.name = name
        self.maxAgeSeconds = maxAgeSeconds
    }
}

/// Who may pick a pool explicitly, and how.
///
/// The header value is `POOL` or `POOL;token=TOKEN`; the cookie value is `POOL` or
/// `POOL:TOKEN`. When `trustedNetworks` is not empty the client address must be in one
/// of them; when `token` is set the value must carry it. An override that fails either
/// test, or names no pool, is ignored: the request is routed as if it had none.
public struct OverridePolicy: Hashable, Sendable {
    public var header: String?
    public var cookie: String?
    public var trustedNetworks: [IPNetwork]
    public var token: String?

    public init(header: String? = nil, cookie: String? = nil, trustedNetworks: [IPNetwork] = [], token: String? = nil) {
        self.header = header
        self.cookie = cookie
        self.trustedNetworks = trustedNetworks
        self.token = token
    }

    /// True when no override can ever apply.
    public var isDisabled: Bool { header == nil && cookie == nil }
}

/// A match rule: requests whose host and path match take this rule's split instead of
/// the default one. Rules are tried in order; the first match wins.
public struct RouteRule: Hashable, Sendable {
    /// Exact host (`api.example.com`) or suffix wildcard (`*.example.com`), case-insensitive,
    /// compared without the port; nil matches any host.
    public var host: String?
    /// Prefix of the request target (`/api/`); nil matches any path.
    public var pathPrefix: String?
    public var split: Split

    public init(host: String? = nil, pathPrefix: String? = nil, split: Split) {
        self.host = host
        self.pathPrefix = pathPrefix
        self.split = split
    }
}

/// Everything about routing except the pools and the default split.
public struct RoutingPolicy: Hashable, Sendable {
    public var cohort: CohortPolicy
    public var overrides: OverridePolicy
    public var rules: [RouteRule]
    /// Header that tells the upstream which pool (and why) took the request, e.g.
    /// `X-Turnout-Pool`; nil sends none.
    public var poolHeader: String?

    public init(
        cohort: CohortPolicy = CohortPolicy(), overrides: OverridePolicy = OverridePolicy(), rules: [RouteRule] = [],
        poolHeader: String? = nil
    ) {
        self.cohort = cohort
        self.overrides = overrides
        self.rules = rules
        self.poolHeader = poolHeader
    }
}
