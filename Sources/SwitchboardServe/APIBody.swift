import Switchboard

/// A request body read as one JSON object, member by member: every accessor throws an
/// `APIError` that names the member at fault, so a backend developer sees which field to fix.
struct APIBody {
    let object: JSONObject

    /// The body must be a JSON object (an empty body is the empty object: nothing is set).
    init(_ request: APIRequest) throws(APIError) {
        if let type = request.header("content-type"),
           !type.lowercased().hasPrefix("application/json") {
            throw APIError(status: 415, code: "unsupported_media_type",
                           message: "send the body as application/json, not \(type)")
        }
        if request.body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            object = JSONObject()
            return
        }
        let value: JSONValue
        do { value = try JSONValue.parse(request.body) } catch {
            throw APIError(status: 400, code: "invalid_json", message: "the body is not valid JSON: \(error)")
        }
        guard case .object(let object) = value else {
            throw APIError(status: 400, code: "invalid_json", message: "the body must be a JSON object")
        }
        self.object = object
    }

    /// Members the endpoint does not know are refused: a typo (`targte`) must not be ignored.
    func only(_ known: [String]) throws(APIError) {
        for key in object.keys where !known.contains(key) {
            throw APIError.invalid(key, "unknown member '\(key)'; this endpoint takes " + known.joined(separator: ", "))
        }
    }

    func string(_ name: String) throws(APIError) -> String? {
        switch object[name] {
        case nil, .null?: return nil
        case .string(let text)?:
            guard !text.isEmpty else { throw APIError.invalid(name, "'\(name)' must not be empty") }
            return text
        default: throw APIError.invalid(name, "'\(name)' must be a string")
        }
    }

    func requiredString(_ name: String) throws(APIError) -> String {
        guard let text = try string(name) else { throw APIError.missing(name) }
        return text
    }

    func int(_ name: String) throws(APIError) -> Int? {
        switch object[name] {
        case nil, .null?: return nil
        case .number(let number)?:
            guard let value = number.int else { throw APIError.invalid(name, "'\(name)' must be an integer") }
            return value
        default: throw APIError.invalid(name, "'\(name)' must be an integer")
        }
    }

    func strings(_ name: String) throws(APIError) -> [String]? {
        switch object[name] {
        case nil, .null?: return nil
        case .array(let items)?:
            var texts: [String] = []
            for item in items {
                guard case .string(let text) = item, !text.isEmpty else {
                    throw APIError.invalid(name, "'\(name)' must be an array of non-empty strings")
                }
                texts.append(text)
            }
            return texts
        default: throw APIError.invalid(name, "'\(name)' must be an array of strings")
        }
    }

    /// Any JSON value; absent stays absent (the message then has no `data`), null is sent.
    func value(_ name: String) -> JSONValue? { object[name] }
}
